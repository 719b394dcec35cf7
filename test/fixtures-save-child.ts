// Child process for the crash-safety tests of writeFileAtomic: writes checkpoints whose every
// value equals their version number, so the parent can tell a complete file from a torn one.
//   loop <path> <megabytes>            write versions 1, 2, 3, ... forever; print "wrote <v>" after each
//   once <path> <megabytes> <version>  write one version; print "ok" or "error: <message>"
import { writeFileAtomic } from '../src/train/atomic.ts';
import { encodeSafetensors } from '../src/train/safetensors.ts';

/** A checkpoint of about `megabytes` MB whose values all equal `version`. */
function versionedCheckpoint(version: number, megabytes: number): Uint8Array {
  const cols = 1024;
  const rows = Math.max(1, Math.round((megabytes * 1024 * 1024) / (4 * cols)));
  return encodeSafetensors(
    {
      'layers.0.weight': { shape: [rows, cols], data: new Float32Array(rows * cols).fill(version) },
      'layers.0.bias': { shape: [rows], data: new Float32Array(rows).fill(version) },
    },
    { version: String(version) },
  );
}

const [mode, path, mb, version] = process.argv.slice(2);
const megabytes = Number(mb);
if (mode === 'loop') {
  for (let v = 1; ; v++) {
    await writeFileAtomic(path, versionedCheckpoint(v, megabytes));
    process.stdout.write(`wrote ${v}\n`);
  }
} else if (mode === 'once') {
  try {
    await writeFileAtomic(path, versionedCheckpoint(Number(version), megabytes));
    process.stdout.write('ok\n');
  } catch (err) {
    process.stdout.write(`error: ${(err as Error).message}\n`);
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
