// BitMEX WebSocket tables kept in memory: a `partial` replaces a table's image (and names its
// keys), `insert` appends, `update` merges into the row with the same keys, `delete` removes it.
// Invariants: rows are unique by their keys; trade-like tables (no keys) keep at most
// ROWS_KEYLESS_MAX newest rows; order rows that left the book (filled, canceled, rejected)
// are dropped, as BitMEX clients do.
export type Row = Record<string, unknown>;

export const ROWS_KEYLESS_MAX = 200;
const CLOSED_ORDER = new Set(["Filled", "Canceled", "Rejected"]);

export interface TableMessage {
  table: string;
  action: "partial" | "insert" | "update" | "delete";
  data: Row[];
  keys?: string[];
  filter?: Record<string, unknown>;
}

export class Table {
  keys: string[] = [];
  rows: Row[] = [];
  private index = new Map<string, Row>();

  constructor(readonly name: string) {}

  private keyOf(row: Row): string {
    return this.keys.map((k) => String(row[k])).join("\u0000");
  }

  apply(message: TableMessage): void {
    switch (message.action) {
      case "partial":
        this.keys = message.keys ?? this.keys;
        this.rows = [];
        this.index.clear();
        for (const row of message.data) this.insert({ ...row });
        break;
      case "insert":
        for (const row of message.data) this.insert({ ...row });
        break;
      case "update":
        for (const row of message.data) {
          const current = this.keys.length ? this.index.get(this.keyOf(row)) : undefined;
          if (current) Object.assign(current, row);
          else this.insert({ ...row });
        }
        break;
      case "delete":
        for (const row of message.data) this.remove(this.keyOf(row));
        break;
    }
    if (this.name === "order") {
      for (const row of [...this.rows]) {
        if (CLOSED_ORDER.has(String(row.ordStatus))) this.remove(this.keyOf(row));
      }
    }
    if (!this.keys.length && this.rows.length > ROWS_KEYLESS_MAX) {
      this.rows.splice(0, this.rows.length - ROWS_KEYLESS_MAX);
    }
  }

  private insert(row: Row): void {
    if (this.keys.length) {
      const key = this.keyOf(row);
      const current = this.index.get(key);
      if (current) {
        Object.assign(current, row);
        return;
      }
      this.index.set(key, row);
    }
    this.rows.push(row);
  }

  private remove(key: string): void {
    const row = this.index.get(key);
    if (!row) return;
    this.index.delete(key);
    const at = this.rows.indexOf(row);
    if (at >= 0) this.rows.splice(at, 1);
  }

  clear(): void {
    this.rows = [];
    this.index.clear();
  }
}
