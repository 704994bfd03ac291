// Compiles contracts/*.sol with the pinned npm solc into ../src/perpetua/chain/contracts/<Name>.json
// ({contract, compiler, evmVersion, abi, bytecode}). Run by `make contracts`; the output is committed
// and reviewed, and tests/chain/test_contracts.py checks it still matches this compile.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(here, "..", "src", "perpetua", "chain", "contracts");
const evmVersion = "cancun";
const names = fs.readdirSync(path.join(here, "contracts")).filter((f) => f.endsWith(".sol")).sort();
const sources = Object.fromEntries(
  names.map((f) => [f, { content: fs.readFileSync(path.join(here, "contracts", f), "utf8") }]),
);
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion,
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const check = process.argv.includes("--check");
let stale = 0;
fs.mkdirSync(outDir, { recursive: true });
for (const file of names) {
  for (const [name, c] of Object.entries(output.contracts[file])) {
    const artifact = {
      contract: name,
      source: `chain/contracts/${file}`,
      compiler: `solc ${solc.version()}`,
      evmVersion,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
    };
    const text = JSON.stringify(artifact, null, 1) + "\n";
    const target = path.join(outDir, `${name}.json`);
    if (check) {
      const old = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
      if (old !== text) { console.error(`stale: ${target}`); stale += 1; }
    } else {
      fs.writeFileSync(target, text);
      console.log(`wrote ${path.relative(process.cwd(), target)}`);
    }
  }
}
process.exit(stale ? 1 : 0);
