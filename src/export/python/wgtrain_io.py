"""What train.py shares with the webgpu-train engine, in Python with torch and numpy only.

- safetensors files read and written without the `safetensors` package, and the engine's
  checkpoint layout: weights by state_dict name, optimizer state as `optim.<param>.<slot>`
  (Adam `m`, `v`; SGD `velocity`), JSON metadata (model config, loss, optimizer, train state,
  dataset); a file written here is read by `wgtrain train --resume` and `wgtrain evaluate`.
- the engine's data order and augmentation: the same seeded shuffle per epoch (mulberry32 and
  the murmur3-style seed mixing of src/util/random.ts and src/data/seed.ts) and the same random
  crop and flip per sample, so that a run here sees the batches the engine would have;
- its learning-rate schedules (src/optim/schedule.ts), as functions of the global step;
- its dataset formats: IDX directories, CIFAR-10 binary batches, CSV tables.
"""
import csv
import gzip
import json
import math
import os
import struct

import numpy as np
import torch

# ---- safetensors ---------------------------------------------------------------------------------

_DTYPES = {
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "F64": (torch.float64, 8),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}


def read_safetensors(path):
    """(tensors by name, as float32 except integer counters; metadata dict of strings)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: {len(raw)} bytes is not a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} runs past the end of the file ({len(raw)} bytes): not a safetensors file, or truncated")
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    except ValueError as e:
        raise ValueError(f"{path}: header is not JSON ({e}): not a safetensors file") from None
    metadata = header.pop("__metadata__", {}) or {}
    data = memoryview(raw)[8 + n :]
    tensors = {}
    for name, entry in header.items():
        dtype, size = _DTYPES.get(entry["dtype"], (None, 0))
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {entry['dtype']}")
        begin, end = entry["data_offsets"]
        shape = entry["shape"]
        count = math.prod(shape)
        if end - begin != count * size or end > len(data):
            raise ValueError(f"{path}: tensor {name} {shape} does not fit its data_offsets {entry['data_offsets']}")
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype) if count else torch.zeros(0, dtype=dtype)
        tensors[name] = t.reshape(shape).clone()
    return tensors, metadata


def write_safetensors(path, tensors, metadata=None):
    """Write float32 tensors (in the given order) and string metadata atomically: a temporary file
    beside `path`, flushed, then renamed over it, so a crash leaves the old file or the new one."""
    header = {}
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        b = t.detach().to("cpu", torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


CHECKPOINT_FORMAT = "webgpu-train/1"


def read_checkpoint(path):
    """An engine checkpoint: (model tensors, optimizer tensors `optim.*`, metadata with JSON values parsed)."""
    tensors, raw = read_safetensors(path)
    if raw.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f'{path}: not a webgpu-train checkpoint (metadata "format" is {raw.get("format")!r}, expected "{CHECKPOINT_FORMAT}")')
    meta = {k: (v if k == "format" else json.loads(v)) for k, v in raw.items()}
    model = {k: v for k, v in tensors.items() if not k.startswith("optim.")}
    optim = {k: v for k, v in tensors.items() if k.startswith("optim.")}
    return model, optim, meta


def write_checkpoint(path, model_state, optim_state, meta):
    """An engine checkpoint (see read_checkpoint); metadata values other than the format are JSON."""
    metadata = {k: (v if k == "format" else json.dumps(v)) for k, v in meta.items()}
    write_safetensors(path, {**model_state, **optim_state}, metadata)


# ---- seeds, data order, augmentation (bit for bit as the engine) ---------------------------------

M32 = 0xFFFFFFFF


def _imul(a, b):
    return (a * b) & M32


def mix_seed(*parts):
    """src/data/seed.ts mixSeed: one 32-bit seed from integer parts."""
    h = 0x9E3779B9
    for p in parts:
        h = _imul(h ^ (p & M32), 0x85EBCA6B)
        h ^= h >> 13
        h = _imul(h, 0xC2B2AE35)
        h ^= h >> 16
        hi = p // 4294967296
        if hi != 0:
            h = _imul(h ^ (hi & M32), 0x27D4EB2F) ^ (h >> 15)
    return h & M32


class Rng:
    """src/util/random.ts Rng (mulberry32)."""

    def __init__(self, seed):
        self.state = seed & M32

    def next_u32(self):
        self.state = (self.state + 0x6D2B79F5) & M32
        t = self.state
        t = _imul(t ^ (t >> 15), t | 1)
        t ^= (t + _imul(t ^ (t >> 7), t | 61)) & M32
        return (t ^ (t >> 14)) & M32

    def next(self):
        return self.next_u32() / 4294967296

    def int(self, n):
        return math.floor(self.next() * n)

    def shuffle(self, a):
        for i in range(len(a) - 1, 0, -1):
            j = self.int(i + 1)
            a[i], a[j] = a[j], a[i]
        return a


def epoch_order(n, seed, epoch):
    """The engine's sample order of a training epoch (Batcher.epochOrder)."""
    return np.array(Rng(mix_seed(seed, epoch)).shuffle(list(range(n))), dtype=np.int64)


def augment_choice(pad, flip, seed, epoch, index):
    """src/data/augment.ts augmentChoice: (dy, dx, flip) for one sample of one epoch."""
    rng = Rng(mix_seed(seed, epoch, index, 0x61756721))
    dy = rng.int(2 * pad + 1) - pad if pad > 0 else 0
    dx = rng.int(2 * pad + 1) - pad if pad > 0 else 0
    f = rng.next() < 0.5 if flip else False
    return dy, dx, f


def augment_image(img, dy, dx, flip):
    """Crop of the zero-padded image shifted by (dy, dx), then a left-right mirror; img [C, H, W]."""
    out = img
    if dy or dx:
        _, h, w = img.shape
        out = np.zeros_like(img)
        ys, ye = max(0, -dy), min(h, h - dy)
        xs, xe = max(0, -dx), min(w, w - dx)
        if ys < ye and xs < xe:
            out[:, ys:ye, xs:xe] = img[:, ys + dy : ye + dy, xs + dx : xe + dx]
    if flip:
        out = out[:, :, ::-1]
    return out


# ---- learning-rate schedules ---------------------------------------------------------------------


def refit_schedule(schedule, total_steps):
    """src/optim/schedule.ts refitSchedule: a schedule planned for one run length, fitted to another
    (cosine ends at the new last step, step decay's boundaries move to the new thirds); None when
    nothing changes."""
    kind = (schedule or {}).get("kind", "constant")
    if kind == "cosine" and schedule["totalSteps"] != total_steps:
        return {**schedule, "totalSteps": total_steps}
    if kind == "step":
        every = max(1, -(-total_steps // 3))
        return None if every == schedule["everySteps"] else {**schedule, "everySteps": every}
    return None


def lr_at(schedule, step, lr):
    """src/optim/schedule.ts: the rate at a 0-based global step."""
    kind = (schedule or {}).get("kind", "constant")
    if kind == "constant":
        return lr
    if kind == "step":
        return lr * schedule["gamma"] ** (step // schedule["everySteps"])
    if kind == "cosine":
        warm, total, low = schedule["warmupSteps"], schedule["totalSteps"], schedule.get("minLr") or 0.0
        if step < warm:
            return lr * (step + 1) / warm
        span = max(1, total - warm)
        t = min(1.0, (step - warm) / span)
        return low + 0.5 * (lr - low) * (1 + math.cos(math.pi * t))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")


# ---- datasets ------------------------------------------------------------------------------------


class Data:
    """Train and test splits as stored (uint8 pixels or float32 features), and how they become model inputs."""

    def __init__(self, name, task, input_shape, train, test, normalization, target_normalization=None):
        self.name, self.task, self.input_shape = name, task, list(input_shape)
        (self.train_x, self.train_y), (self.test_x, self.test_y) = train, test
        self.normalization = normalization
        self.target_normalization = target_normalization

    def inputs(self, x):
        """Model inputs from stored samples [n, ...]: pixels / 255, or standardised features."""
        if self.normalization["kind"] == "scale255":
            # In float64, then rounded once to float32, as the engine's batcher does.
            return torch.from_numpy((np.asarray(x, dtype=np.float64) / 255).astype(np.float32))
        mean = np.asarray(self.normalization["mean"], dtype=np.float64)
        std = np.asarray(self.normalization["std"], dtype=np.float64)
        return torch.from_numpy(((x.astype(np.float64) - mean) / std).astype(np.float32))

    def targets(self, y):
        """Loss targets: class indices, or standardised regression targets."""
        if self.task == "classification":
            return torch.from_numpy(np.asarray(y, dtype=np.int64))
        y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        tn = self.target_normalization
        if tn:
            y = (y - np.asarray(tn["mean"])) / np.asarray(tn["std"])
        return torch.from_numpy(y.astype(np.float32))


def _idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    nd = raw[3]
    dims = struct.unpack(">" + "I" * nd, raw[4 : 4 + 4 * nd])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd)
    if data.size != math.prod(dims):
        raise ValueError(f"{path}: dimensions {list(dims)} need {math.prod(dims)} bytes of data, the file has {data.size}")
    return data.reshape(dims)


def _find(directory, prefixes, stem, idx):
    names = [f"{p}-{stem}{sep}{idx}{gz}" for p in prefixes for sep in ("-", ".") for gz in ("", ".gz")]
    for n in names:
        if os.path.exists(os.path.join(directory, n)):
            return os.path.join(directory, n)
    raise ValueError(f"{directory}: not an IDX dataset directory: missing {names[0]}[.gz]")


def load_idx_dir(directory, info):
    def split(prefixes):
        x = _idx(_find(directory, prefixes, "images", "idx3-ubyte"))
        y = _idx(_find(directory, prefixes, "labels", "idx1-ubyte"))
        # [n, h, w] grey images, or [n, c, h, w] (an image folder's RGB images, as the export writes them).
        return (x if x.ndim == 4 else x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])), y.astype(np.int64)

    train, test = split(["train"]), split(["t10k", "test"])
    return Data(info.get("name", directory), "classification", train[0].shape[1:], train, test, {"kind": "scale255"})


def load_cifar_dir(directory, info):
    if os.path.isdir(os.path.join(directory, "cifar-10-batches-bin")):
        directory = os.path.join(directory, "cifar-10-batches-bin")

    def batch(path):
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size % 3073:
            raise ValueError(f"{path}: {raw.size} bytes is not a whole number of 3073-byte records")
        r = raw.reshape(-1, 3073)
        return r[:, 1:].reshape(-1, 3, 32, 32), r[:, 0].astype(np.int64)

    present = [os.path.join(directory, f"data_batch_{i}.bin") for i in range(1, 6)]
    parts = [batch(p) for p in present if os.path.exists(p)]
    if not parts:
        raise ValueError(f"{directory}: no CIFAR-10 training batches (data_batch_N.bin)")
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    test = batch(os.path.join(directory, "test_batch.bin"))
    return Data(info.get("name", "cifar10"), "classification", [3, 32, 32], train, test, {"kind": "scale255"})


def _js_number_key(v):
    """String(v) in JavaScript for the values a class column holds (1.0 -> "1")."""
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e21 else repr(float(v))


def _split_indices(n, test_fraction=0.2, seed=0):
    """src/data/csv.ts splitIndices: a seeded shuffle, then each split in file order."""
    perm = Rng(seed).shuffle(list(range(n)))
    n_test = math.floor(n * test_fraction + 0.5)  # JavaScript's Math.round
    return sorted(perm[n_test:]), sorted(perm[:n_test])


def load_csv(path, info, opts):
    """A table read as the engine reads it: features and target by the names the checkpoint holds,
    the same seeded split, and the checkpoint's standardisation."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        lines = f.read().splitlines()[opts.get("skipRows") or 0 :]
    delimiter = opts.get("delimiter")
    if not delimiter:
        rows_by = {d: [r for r in csv.reader(lines, delimiter=d) if r] for d in (",", ";", "\t")}
        even = [d for d, rows in rows_by.items() if len(rows[0]) > 1 and all(len(r) == len(rows[0]) for r in rows)]
        delimiter = even[0] if len(even) == 1 else ","
    rows = [r for r in csv.reader(lines, delimiter=delimiter) if any(c.strip() for c in r)]
    if opts.get("header", True) is False:
        header = [str(i + 1) for i in range(len(rows[0]))]
    else:
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    features, target = info["featureNames"], info["targetName"]
    missing = [c for c in [*features, target] if c not in col]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)} (the checkpoint was trained on {', '.join(features)} -> {target})")
    x = np.array([[float(r[col[c]]) for c in features] for r in rows], dtype=np.float64)
    raw_y = [r[col[target]].strip() for r in rows]
    train_idx, test_idx = _split_indices(len(rows))
    if info["task"] == "classification":
        names = {n: i for i, n in enumerate(info["classNames"])}

        def key(v):
            try:
                return _js_number_key(float(v))
            except ValueError:
                return v

        y = np.array([names[key(v)] for v in raw_y], dtype=np.int64)
    else:
        y = np.array([float(v) for v in raw_y], dtype=np.float64)
    sel = lambda a, idx: a[np.asarray(idx, dtype=np.int64)]
    return Data(
        info.get("name", path),
        info["task"],
        [len(features)],
        (sel(x, train_idx).astype(np.float32), sel(y, train_idx)),
        (sel(x, test_idx).astype(np.float32), sel(y, test_idx)),
        info["normalization"],
        info.get("targetNormalization"),
    )


FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def load_dataset(spec, info, csv_opts=None):
    """A dataset by the engine's names: an IDX or CIFAR-10 directory, a .csv/.tsv file, or
    `fashion-mnist` (Debian's package, or $FASHION_MNIST_DIR). `info` is the checkpoint's dataset
    metadata (its name, classes, normalisation, a table's columns)."""
    info = info or {}
    if spec == "fashion-mnist":
        spec = os.environ.get("FASHION_MNIST_DIR") or FASHION_MNIST_DIR
    if spec.lower().endswith((".csv", ".tsv")):
        return load_csv(spec, info, csv_opts or {})
    if not os.path.isdir(spec):
        raise ValueError(f"dataset {spec!r}: no such directory or .csv/.tsv file (pass --data PATH)")
    entries = os.listdir(spec)
    if any(e.startswith(("train-", "t10k-", "test-")) for e in entries):
        return load_idx_dir(spec, info)
    if any(e.endswith(".bin") for e in entries) or "cifar-10-batches-bin" in entries:
        return load_cifar_dir(spec, info)
    raise ValueError(f"{spec}: holds neither IDX files nor CIFAR-10 batches")
