// The `wgtrain` command line: train, evaluate, predict and export. It parses and shows; the engine does
// the work. Every failure ends in one clear line on stderr and a non-zero exit, never a stack
// trace (set WGTRAIN_DEBUG=1 to see one).
import '../gpu/node-host.ts';
import { Command, CommanderError, Option } from 'commander';
import { ACTIVATIONS } from '../ops/activation.ts';
import { presetNames } from '../nn/presets.ts';
import { optimizerKinds } from '../optim/optimizer.ts';
import {
  augmentList,
  channelsOption,
  delimiterOption,
  durationOption,
  ExitStatus,
  factorOption,
  imageSizeOption,
  intList,
  nameList,
  nonNegativeInt,
  numberInRange,
  oneOf,
  positiveInt,
  positiveNumber,
  saveEveryOption,
  UsageError,
  valSplitOption,
} from './options.ts';
import { runEvaluate, runTrain } from './commands.ts';
import { runExport } from './export.ts';
import { runPredict } from './predict.ts';

/** How to read a table's layout: the same options for train, evaluate and predict. */
function csvLayoutOptions(c: Command, what: string): Command {
  return c
    .option('--skip-rows <n>', `lines to skip before the header of ${what} (e.g. a metadata line)`, nonNegativeInt('--skip-rows'))
    .option('--delimiter <char>', `field separator of ${what}: one character or "tab" (default: detected among , ; and tab)`, delimiterOption)
    .option('--no-header', `${what} has no header line: columns are named 1, 2, ... by position`)
    .option('--ignore-columns <names>', `columns of ${what} that are neither features nor the target (comma-separated)`, nameList('--ignore-columns'));
}

/** How to read an image folder (one subfolder per class): the same options for train, evaluate and predict. */
function imageFolderOptions(c: Command, fromCheckpoint: boolean): Command {
  const dflt = fromCheckpoint ? "the checkpoint's" : '32';
  return c
    .option('--image-size <n|HxW>', `image folders: the model input size in pixels, a side or HEIGHTxWIDTH; each image is centre-cropped to its aspect ratio and resized (default: ${dflt})`, imageSizeOption)
    .addOption(new Option('--channels <1|3|auto>', `image folders: 1 grey, 3 RGB, auto: grey when every file is grey (default: ${fromCheckpoint ? "the checkpoint's" : 'auto'})`).argParser(channelsOption))
    .option('--val-split <share>', 'image folders: the share of each class held out for validation, in (0, 1) (default 0.2)', valSplitOption)
    .option('--split-seed <n>', 'image folders: seed of the validation split (default 0; the same in train, evaluate and predict)', nonNegativeInt('--split-seed'));
}

function program(): Command {
  const p = new Command('wgtrain').description('Train neural networks on WebGPU (a GPU, or SwiftShader on machines without one).').showHelpAfterError('(run with --help for usage)').exitOverride();

  const train = p
    .command('train')
    .description("train a model on a dataset; prints test loss and accuracy, and errors in the target's units (regression) or per-class figures (classification)")
    .option('--dataset <name|path>', 'mnist, fashion-mnist, a directory of IDX files or CIFAR-10 batches, an image folder (one subfolder of PNG/JPEG files per class), or a .csv/.tsv file', 'mnist')
    .option('--target <column>', 'target column of a table dataset')
    .addOption(new Option('--task <task>', 'for table data: classification or regression (default: from the target column)').argParser(oneOf('--task', ['classification', 'regression'] as const)));
  imageFolderOptions(csvLayoutOptions(train, 'a table dataset'), false)
    .addOption(new Option('--model <preset>', `model preset (${presetNames().join(', ')})`).default('mlp'))
    .option('--hidden <sizes>', 'hidden layer widths of the MLP, comma-separated', intList('--hidden'), [256, 128])
    .addOption(new Option('--activation <name>', 'hidden activation').choices(ACTIVATIONS).default('relu'))
    .option('--dropout <p>', 'dropout after each hidden layer', numberInRange('--dropout', 0, 1), 0)
    .option('--depth <n>', 'resnet: weighted layers, 6n + 2 (8, 14, 20, 32, 56; default 20); vit: transformer blocks (default 4)', positiveInt('--depth'))
    .option('--width <n>', 'vit: token width (default 64)', positiveInt('--width'))
    .option('--heads <n>', 'vit: attention heads (default 4)', positiveInt('--heads'))
    .option('--patch <n>', 'vit: patch size in pixels, dividing the image (default 4)', positiveInt('--patch'))
    .option('--mlp-ratio <r>', 'vit: MLP width per token width (default 2)', positiveNumber('--mlp-ratio'))
    .addOption(new Option('--pool <kind>', 'vit: what feeds the classifier: a class token or the mean over tokens (default mean)').choices(['cls', 'mean']))
    .option('--label-smoothing <e>', 'softmax cross-entropy with targets (1 - e) onehot + e / classes', numberInRange('--label-smoothing', 0, 1), 0)
    .option('--clip-norm <n>', 'clip the gradients to this global L2 norm before each update', positiveNumber('--clip-norm'))
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(optimizerKinds()).default('adam'))
    .option('--lr <rate>', 'learning rate', positiveNumber('--lr'), 0.001)
    .option('--momentum <m>', 'SGD momentum', numberInRange('--momentum', 0, 1))
    .option('--nesterov', 'Nesterov momentum (SGD)')
    .option('--weight-decay <wd>', 'L2 penalty (sgd, adam) or decoupled decay (adamw)', numberInRange('--weight-decay', 0, 1, true))
    .addOption(new Option('--schedule <kind>', 'learning-rate schedule').choices(['constant', 'cosine', 'step']).default('cosine'))
    .option('--warmup <steps>', 'cosine schedule warm-up steps', nonNegativeInt('--warmup'), 0)
    .option('--epochs <n>', 'total epochs (a resumed run continues up to this many)', nonNegativeInt('--epochs'), 10)
    .option('--batch-size <n>', 'batch size', positiveInt('--batch-size'), 64)
    .option('--seed <n>', 'seed for weights, data order and dropout', nonNegativeInt('--seed'), 1)
    .option('--augment [kinds]', 'image augmentation: shift (random crop of the image padded by 2), flip (horizontal; not for digits), none; bare: shift,flip (default: none; vit: shift; a resumed run: its own)', augmentList)
    .option('--save <file>', 'checkpoint (safetensors) written atomically at every epoch end, within epochs (--save-every) and when stopped')
    .addOption(new Option('--save-every <steps|time>', 'also checkpoint within epochs: every N steps (500) or after a time (10m, 90s)').argParser(saveEveryOption).default({ seconds: 300 }, '5m'))
    .option('--keep <k>', 'checkpoints to keep: the newest at --save, the k-1 before it beside it as FILE-stepN.safetensors', positiveInt('--keep'), 1)
    .option('--max-time <time>', 'stop cleanly after this long (2h, 45m, 1h30m; plain numbers are seconds), with a checkpoint to resume from', durationOption('--max-time'))
    .option('--mkdir', 'make missing directories of output files (default: refuse them, so that a mistyped path fails at once)')
    .option('--stop-on-divergence [factor]', 'stop when the mean loss grows this many times above its lowest within --divergence-window steps (bare: 3)', factorOption('--stop-on-divergence'))
    .option('--divergence-window <steps>', 'steps --stop-on-divergence looks back', positiveInt('--divergence-window'), 500)
    .option('--resume <file>', "continue training from a checkpoint (one saved within an epoch continues at its next batch; also one written by an export's train.py)")
    .option('--init-from <file>', 'start from the weights of a state_dict saved as safetensors (e.g. trained in PyTorch); names and shapes must match the model')
    .option('--metrics-out <file>', "write run metrics as JSON, the curves as SVG beside it (and a classifier's confusion matrix as FILE.confusion.svg, layer statistics as FILE.stats.svg)")
    .option('--log-every <steps>', 'read the loss back every this many steps', positiveInt('--log-every'), 25)
    .option('--stats-every <steps>', 'per-layer statistics (weights, gradients, update ratios, dead ReLU outputs) every this many steps, with warnings; into the metrics JSON and FILE.stats.svg', positiveInt('--stats-every'))
    .option('--quiet', 'no progress bar; one line per epoch')
    .action(async (o) => runTrain(o));

  const evaluate = p
    .command('evaluate')
    .description("test loss and accuracy of a checkpoint, with errors in the target's units (regression) or per-class figures and the confusion matrix (classification)")
    .requiredOption('--checkpoint <file>', 'checkpoint to evaluate')
    .option('--dataset <name|path>', 'dataset (default: the one the checkpoint was trained on; a table file must be given)')
    .option('--target <column>', "target column of a table dataset (default: the checkpoint's)")
    .addOption(new Option('--task <task>', "read a table's target as classification or regression (default: as fits the checkpoint)").argParser(oneOf('--task', ['classification', 'regression'] as const)))
    .option('--metrics-out <file>', "write the result as JSON (and a classifier's confusion matrix as FILE.confusion.svg)");
  imageFolderOptions(csvLayoutOptions(evaluate, 'a table dataset'), true).action(async (o) => runEvaluate(o));

  const predict = p
    .command('predict')
    .description('predict with a checkpoint: new rows of a table (.csv), an IDX images file, or the first N test samples of a dataset')
    .requiredOption('--checkpoint <file>', 'checkpoint to use')
    .option('--input <file>', 'new data: a .csv table with the training feature columns (the target column absent or skipped), or an IDX images file (idx3-ubyte, optionally gzipped)')
    .option('--dataset <name|path>', "predict test samples of this dataset (default: the checkpoint's)")
    .option('--count <n>', 'how many samples (default: all rows of a table, else 10)', positiveInt('--count'))
    .option('--json', 'print predictions as JSON lines')
    .option('--out <file.csv>', "write the predictions as CSV (a table's rows with the prediction columns appended) instead of printing them");
  imageFolderOptions(csvLayoutOptions(predict, 'the input table'), true).action(async (o) => runPredict(o));

  p.command('export')
    .description('export a checkpoint: an ONNX model (for onnxruntime and other runtimes), or a PyTorch directory (model.py, weights, optimizer state, settings, train.py to continue under torchrun)')
    .requiredOption('--checkpoint <file>', 'checkpoint to export')
    .addOption(new Option('--format <format>', 'onnx or pytorch').choices(['onnx', 'pytorch']).makeOptionMandatory())
    .requiredOption('--out <path>', 'onnx: the .onnx file to write; pytorch: a new (or empty) directory')
    .option('--dataset <name|path>', 'pytorch: the dataset train.py reads (default: the one the checkpoint was trained on)')
    .option('--batch-size <n>', "pytorch: global batch size for train.py (default: the checkpoint's run)", positiveInt('--batch-size'))
    .option('--epochs <n>', "pytorch: total epochs for train.py to reach (default: the checkpoint's run)", nonNegativeInt('--epochs'))
    .option('--augment [kinds]', "pytorch: image augmentation for train.py: shift, flip; bare: shift,flip (default: the checkpoint's run)", augmentList)
    .action(async (o) => runExport(o));
  return p;
}

async function main(argv: string[]): Promise<number> {
  const p = program();
  try {
    await p.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof ExitStatus) return err.code; // what to say was said
    if (err instanceof CommanderError) {
      // Commander already printed the message (and help hint); help and version exit 0.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`error: ${err.message}\n(run with --help for usage)\n`);
      return 2;
    }
    const e = err as Error;
    process.stderr.write(`error: ${e.message}\n`);
    if (process.env.WGTRAIN_DEBUG) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
