// Runs before every test file: installs the engine's Node host (Dawn as the GPU, files for the
// tuning cache), as the package's Node entry does for its users.
import '../src/gpu/node-host.ts';
