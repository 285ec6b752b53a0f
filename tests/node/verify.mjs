// Verify an evidence Sigstore bundle offline with @sigstore/verify, from a PEM public key alone.
// Usage: node verify.mjs BUNDLE.sigstore.json KEY.pub  -> prints "verified" (exit 0) or the error (exit 1).
import { readFileSync } from "node:fs";
import { createPublicKey } from "node:crypto";
import { bundleFromJSON } from "@sigstore/bundle";
import { Verifier, toSignedEntity } from "@sigstore/verify";

const [bundlePath, keyPath] = process.argv.slice(2);
try {
  const bundle = bundleFromJSON(JSON.parse(readFileSync(bundlePath, "utf8")));
  const publicKey = createPublicKey(readFileSync(keyPath, "utf8"));
  const hint = bundle.verificationMaterial.content.publicKey.hint;
  const trust = {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    publicKey: (h) => {
      if (h !== hint) throw new Error(`unknown key hint ${h}`);
      return { publicKey, validFor: () => true };
    },
  };
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  verifier.verify(toSignedEntity(bundle));
  console.log("verified");
} catch (err) {
  console.log(`rejected: ${err.code || err.name}: ${err.message}`);
  process.exit(1);
}
