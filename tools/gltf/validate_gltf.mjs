// Validate .glb/.gltf files with the Khronos glTF Validator; prints one JSON report per file (an array).
//   node tools/gltf/validate_gltf.mjs B.glb [more.glb ...]
// gltf-validator is pinned in package.json beside this file (npm ci --prefix tools/gltf).
import { readFile } from "node:fs/promises";
import path from "node:path";
import validator from "gltf-validator";

const reports = [];
for (const file of process.argv.slice(2)) {
  const data = new Uint8Array(await readFile(file));
  const report = await validator.validateBytes(data, {
    uri: path.basename(file),
    maxIssues: 200,
    externalResourceFunction: async (uri) => new Uint8Array(await readFile(path.join(path.dirname(file), decodeURIComponent(uri)))),
  });
  reports.push(report);
}
process.stdout.write(JSON.stringify(reports, null, 1) + "\n");
