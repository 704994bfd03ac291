// WebAuthn security keys (passkeys as a second factor) in the browser: the venue's options JSON
// (PublicKeyCredentialCreationOptionsJSON / RequestOptionsJSON, binary fields base64url) turned
// into the ArrayBuffers navigator.credentials wants, and the credential it returns turned back
// into the JSON the venue verifies (services/passkeys.py, the `webauthn` library).
// Invariants: the venue's challenge is used as given (single use, 5 minutes, server side); no
// key material is kept by the page; the relying party is the venue's public host, so the
// ceremony works only on that host (WebAuthn refuses IP addresses as relying parties).

type Json = Record<string, unknown>;

export function b64urlToBytes(text: string): ArrayBuffer {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  const raw = atob(base64);
  const bytes = new Uint8Array(raw.length);
  for (let n = 0; n < raw.length; n++) bytes[n] = raw.charCodeAt(n);
  return bytes.buffer;
}

export function bytesToB64url(buffer: ArrayBuffer | null | undefined): string {
  if (!buffer) return "";
  let raw = "";
  for (const b of new Uint8Array(buffer)) raw += String.fromCharCode(b);
  return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Whether this page can run a WebAuthn ceremony at all (browser support, secure context). */
export function passkeysAvailable(): boolean {
  return typeof window.PublicKeyCredential === "function" && Boolean(navigator.credentials) && window.isSecureContext;
}

const descriptors = (list: unknown): PublicKeyCredentialDescriptor[] =>
  ((list as Json[] | undefined) ?? []).map((d) => ({
    type: "public-key",
    id: b64urlToBytes(String(d.id)),
    transports: d.transports as AuthenticatorTransport[] | undefined,
  }));

function creationOptions(options: Json): PublicKeyCredentialCreationOptions {
  const user = options.user as Json;
  return {
    ...(options as unknown as PublicKeyCredentialCreationOptions),
    challenge: b64urlToBytes(String(options.challenge)),
    user: { id: b64urlToBytes(String(user.id)), name: String(user.name), displayName: String(user.displayName ?? user.name) },
    excludeCredentials: descriptors(options.excludeCredentials),
  };
}

function requestOptions(options: Json): PublicKeyCredentialRequestOptions {
  return {
    ...(options as unknown as PublicKeyCredentialRequestOptions),
    challenge: b64urlToBytes(String(options.challenge)),
    allowCredentials: descriptors(options.allowCredentials),
  };
}

function credentialJson(credential: PublicKeyCredential): Json {
  const response = credential.response as AuthenticatorAttestationResponse & AuthenticatorAssertionResponse;
  const out: Json = { clientDataJSON: bytesToB64url(response.clientDataJSON) };
  if ("attestationObject" in response && response.attestationObject) {
    out.attestationObject = bytesToB64url(response.attestationObject);
    out.transports = typeof response.getTransports === "function" ? response.getTransports() : [];
  } else {
    out.authenticatorData = bytesToB64url(response.authenticatorData);
    out.signature = bytesToB64url(response.signature);
    if (response.userHandle) out.userHandle = bytesToB64url(response.userHandle);
  }
  return {
    id: credential.id,
    rawId: bytesToB64url(credential.rawId),
    type: credential.type,
    response: out,
    authenticatorAttachment: credential.authenticatorAttachment ?? undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

function refused(error: unknown): Error {
  if (error instanceof DOMException && error.name === "NotAllowedError") {
    return new Error("The security key was not used (cancelled or timed out).");
  }
  if (error instanceof DOMException && error.name === "SecurityError") {
    return new Error(`This address cannot use security keys (${location.hostname}): open the venue by its public host name.`);
  }
  return error instanceof Error ? error : new Error(String(error));
}

/** Registration: the venue's creation options in, the new credential's JSON out. */
export async function createCredential(options: Json): Promise<Json> {
  try {
    const credential = (await navigator.credentials.create({ publicKey: creationOptions(options) })) as PublicKeyCredential | null;
    if (!credential) throw new Error("No security key was made.");
    return credentialJson(credential);
  } catch (error) {
    throw refused(error);
  }
}

/** Sign-in: the venue's request options in, the assertion's JSON out. */
export async function getAssertion(options: Json): Promise<Json> {
  try {
    const credential = (await navigator.credentials.get({ publicKey: requestOptions(options) })) as PublicKeyCredential | null;
    if (!credential) throw new Error("No security key answered.");
    return credentialJson(credential);
  } catch (error) {
    throw refused(error);
  }
}
