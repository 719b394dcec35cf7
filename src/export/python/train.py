"""Continue training a webgpu-train model in PyTorch, on one process or many.

    torchrun --nproc_per_node 4 train.py --epochs 20      # DistributedDataParallel, one process per GPU/CPU share
    python3 train.py --nproc 2 --epochs 20                # the same, processes launched here (torch.multiprocessing)
    python3 train.py --epochs 20                          # one process

It starts from the exported weights and optimizer state (weights.safetensors, optimizer.safetensors,
or --checkpoint FILE, an engine checkpoint such as one this script wrote), with the settings of
settings.json (optimizer, schedule, loss, batch size, augmentation, seed), and writes an engine
checkpoint (--out) that `wgtrain evaluate`, `wgtrain predict` and `wgtrain train --resume` read.

The batch size is the global one: each of N processes takes its 1/N of every batch, and DDP
averages their gradients, so N processes take the steps one would (batch norm aside: each process
normalises with the statistics of its own share). Batches follow the engine's seeded order and
augmentation, so a run here sees the batches the engine would have. gloo on CPUs, nccl on GPUs.
"""
import argparse
import json
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import wgtrain_io as io  # noqa: E402
from model import LOSS_SKIPS_FINAL_SOFTMAX, Model  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="dataset: an IDX or CIFAR-10 directory, a .csv file, or fashion-mnist (default: settings.json)")
    p.add_argument("--checkpoint", help="continue from this engine checkpoint (default: the exported weights and optimizer state)")
    p.add_argument("--out", default=os.path.join(HERE, "checkpoint.safetensors"), help="engine checkpoint written after every epoch and at the end")
    p.add_argument("--epochs", type=int, help="total epochs to reach (default: settings.json)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps of this run (the checkpoint then resumes at the next batch)")
    p.add_argument("--batch-size", type=int, help="global batch size (default: settings.json)")
    p.add_argument("--nproc", type=int, default=1, help="processes to launch here (without torchrun)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--log-every", type=int, default=25, help="print the loss every this many steps")
    p.add_argument("--eval-only", action="store_true", help="evaluate the starting weights on the test split and stop")
    return p.parse_args()


def log(rank, *a):
    if rank == 0:
        print(*a, flush=True)


def load_start(args):
    """(model tensors, optimizer tensors, checkpoint metadata) to start from."""
    if args.checkpoint:
        return io.read_checkpoint(args.checkpoint)
    weights, _ = io.read_safetensors(os.path.join(HERE, "weights.safetensors"))
    optim, raw = io.read_safetensors(os.path.join(HERE, "optimizer.safetensors"))
    meta = {k: (v if k == "format" else json.loads(v)) for k, v in raw.items()}
    return weights, optim, meta


def make_optimizer(model, cfg, no_decay):
    """torch.optim with the engine's semantics: weight decay only where the engine applies it."""
    named = list(model.named_parameters())
    wd = cfg.get("weightDecay") or 0.0
    groups = [
        {"params": [p for n, p in named if n not in no_decay], "weight_decay": wd},
        {"params": [p for n, p in named if n in no_decay], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    kind = cfg["kind"]
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg.get("momentum") or 0.0, nesterov=bool(cfg.get("nesterov")))
    betas = (cfg.get("beta1", 0.9), cfg.get("beta2", 0.999))
    if kind == "adam":
        return torch.optim.Adam(groups, lr=cfg["lr"], betas=betas, eps=cfg.get("eps", 1e-8))
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=cfg["lr"], betas=betas, eps=cfg.get("eps", 1e-8))
    raise ValueError(f"optimizer {kind!r} has no PyTorch counterpart here")


def load_optimizer_state(opt, model, cfg, tensors, step, device):
    """The engine's optim.<param>.<slot> tensors as torch optimizer state (none before the first step)."""
    if step == 0:
        return
    for name, p in model.named_parameters():
        get = lambda slot: tensors[f"optim.{name}.{slot}"].to(device)
        if cfg["kind"] in ("adam", "adamw"):
            opt.state[p] = {"step": torch.tensor(float(step)), "exp_avg": get("m"), "exp_avg_sq": get("v")}
        elif (cfg.get("momentum") or 0) > 0:
            opt.state[p] = {"momentum_buffer": get("velocity")}


def optimizer_tensors(opt, model, cfg):
    """torch optimizer state as the engine's optim.<param>.<slot> tensors."""
    out = {}
    for name, p in model.named_parameters():
        st = opt.state.get(p, {})
        zeros = lambda: torch.zeros_like(p)
        if cfg["kind"] in ("adam", "adamw"):
            out[f"optim.{name}.m"] = st.get("exp_avg", zeros())
            out[f"optim.{name}.v"] = st.get("exp_avg_sq", zeros())
        elif (cfg.get("momentum") or 0) > 0:
            buf = st.get("momentum_buffer")
            out[f"optim.{name}.velocity"] = buf if buf is not None else zeros()
    return out


def loss_and_hits(kind, out, y, smoothing):
    """Mean loss of a batch and its correct count (None for regression), as the engine's losses."""
    if kind == "softmax_cross_entropy":
        return F.cross_entropy(out, y, label_smoothing=smoothing), (out.argmax(dim=1) == y).sum()
    if kind == "mse":
        return F.mse_loss(out, y.view_as(out)), None
    if kind == "bce_logits":
        y = y.view_as(out)
        hits = ((out > 0) == (y > 0.5)).float().mean(dim=1).sum()
        return F.binary_cross_entropy_with_logits(out, y), hits
    raise ValueError(f"loss {kind!r} is not known here")


def forward(model, x):
    """The output the loss reads: the logits before a final Softmax the engine's loss absorbs."""
    return model(x, softmax=False) if LOSS_SKIPS_FINAL_SOFTMAX else model(x)


@torch.no_grad()
def evaluate(model, data, loss, device, smoothing=0.0, batch=500):
    """Mean loss and accuracy over the test split, in evaluation mode (dropout off, running statistics)."""
    was = model.training
    model.eval()
    n = len(data.test_y)
    total, hits = 0.0, 0.0
    for s in range(0, n, batch):
        x = data.inputs(data.test_x[s : s + batch]).to(device)
        y = data.targets(data.test_y[s : s + batch]).to(device)
        l, h = loss_and_hits(loss, forward(model, x), y, smoothing)
        total += float(l) * len(x)
        hits = None if h is None else hits + float(h)
    model.train(was)
    return total / n, (None if hits is None else hits / n), n


def batch_of(data, idx, epoch, seed, augment):
    """Stored samples idx as model inputs (augmented as the engine would) and loss targets."""
    x = data.train_x[idx]
    if augment and (augment.get("pad") or augment.get("flip")):
        x = x.copy()
        for j, i in enumerate(idx):
            dy, dx, flip = io.augment_choice(augment.get("pad") or 0, bool(augment.get("flip")), seed, epoch, int(i))
            x[j] = io.augment_image(x[j], dy, dx, flip)
    return data.inputs(x), data.targets(data.train_y[idx])


def run(rank, world, local_rank, args):
    if world > 1:
        backend = "nccl" if args.device == "cuda" else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=world)
    # Processes share the machine's cores rather than each taking all of them.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    device = torch.device(f"cuda:{local_rank}" if args.device == "cuda" else "cpu")
    with open(os.path.join(HERE, "settings.json")) as f:
        settings = json.load(f)
    weights, optim_tensors, meta = load_start(args)
    opt_cfg, loss = settings["optimizer"], settings["loss"]
    saved = meta.get("state") or {}
    # A checkpoint taken within an epoch continues at its next batch of the same epoch order.
    state = {"epoch": saved.get("epoch", 0), "step": saved.get("step", 0), "batch": saved.get("batch") or 0}
    seed = settings["seed"]
    batch = args.batch_size or settings["batchSize"]
    epochs = args.epochs if args.epochs is not None else settings["epochs"]
    if batch % world:
        raise SystemExit(f"train.py: the global batch size {batch} does not split evenly over {world} processes")
    torch.manual_seed(seed * 1000 + rank)  # dropout masks: PyTorch's own generator, one stream per process

    model = Model()
    model.load_state_dict(weights, strict=True)
    model.to(device)
    spec = args.data or settings.get("dataset")
    if not spec:
        raise SystemExit("train.py: settings.json names no dataset; pass --data PATH")
    if not os.path.isabs(spec) and not os.path.exists(spec) and os.path.exists(os.path.join(HERE, spec)):
        spec = os.path.join(HERE, spec)
    data = io.load_dataset(spec, meta.get("dataset"), settings.get("csv"))

    if args.eval_only:
        if rank == 0:
            l, acc, n = evaluate(model, data, loss, device, settings.get("labelSmoothing") or 0.0)
            print(f"test loss {l:.4f}" + ("" if acc is None else f", test accuracy {100 * acc:.2f}%") + f" ({n} samples)", flush=True)
        if world > 1:
            dist.destroy_process_group()
        return

    if not opt_cfg or not loss:
        raise SystemExit("train.py: settings.json names no optimizer or loss (the export was of a model without a trainer); add them, e.g. "
                         '"optimizer": {"kind": "adam", "lr": 0.001}, "loss": "softmax_cross_entropy"')
    opt = make_optimizer(model, opt_cfg, set(settings.get("noDecay", [])))
    load_optimizer_state(opt, model, opt_cfg, optim_tensors, state["step"], device)
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if args.device == "cuda" else None) if world > 1 else model
    net.train()

    n = len(data.train_y)
    per_epoch = n // min(batch, n)
    # Told to train to another epoch than the run was planned for: the schedule follows, as in the engine.
    last_step = state["step"] + max(0, epochs - state["epoch"]) * per_epoch - state["batch"]
    refit = io.refit_schedule(opt_cfg.get("schedule"), last_step)
    if refit is not None:
        opt_cfg = {**opt_cfg, "schedule": refit}
        log(rank, f"learning-rate schedule ({refit['kind']}) refitted to end at epoch {epochs} (step {last_step})")
    share = min(batch, n) // world
    cut = saved.get("data")
    if state["batch"] and cut:
        augment = settings.get("augment") or {}
        was, now = cut.get("augment") or {}, {"pad": augment.get("pad") or 0, "flip": bool(augment.get("flip"))}
        diffs = [f"{cut['samples']} training samples, this data has {n}"] if cut["samples"] != n else []
        diffs += [f"batches of {cut['batchSize']}, these are of {min(batch, n)}"] if cut["batchSize"] != min(batch, n) else []
        diffs += [f"augmentation {was}, this run's is {now}"] if (was.get("pad") or 0, bool(was.get("flip"))) != (now["pad"], now["flip"]) else []
        if diffs:
            raise SystemExit(f"train.py: the checkpoint stopped within an epoch and continues only on the batches it was cut from: {'; '.join(diffs)}")
    log(rank, f"{data.name}: {n} train / {len(data.test_y)} test samples; {world} process(es), global batch {min(batch, n)}, "
        f"from epoch {state['epoch']}{' batch ' + str(state['batch']) if state['batch'] else ''} step {state['step']} to epoch {epochs}")

    def save():
        if rank != 0:
            return None
        l, acc, count = evaluate(model, data, loss, device, settings.get("labelSmoothing") or 0.0)
        m = {k: v for k, v in meta.items()}
        m["format"] = io.CHECKPOINT_FORMAT
        m["optimizer"], m["loss"] = opt_cfg, loss
        m["training"] = {"labelSmoothing": settings.get("labelSmoothing") or 0.0, "clipNorm": settings.get("clipNorm")}
        m["state"] = {"epoch": state["epoch"], "step": state["step"], "dataSeed": seed}
        if state["batch"]:
            # Within an epoch: the engine resumes at this batch (the data's fingerprint is not computed here).
            m["state"]["batch"] = state["batch"]
        m["pytorch"] = {"testLoss": l, "testAccuracy": acc, "testSamples": count, "processes": world, "torch": torch.__version__}
        io.write_checkpoint(args.out, {k: v for k, v in model.state_dict().items()}, optimizer_tensors(opt, model, opt_cfg), m)
        return l, acc, count

    steps_here, stop, result = 0, False, None
    window, t0 = [], time.time()
    while state["epoch"] < epochs and not stop:
        epoch = state["epoch"]
        order = io.epoch_order(n, seed, epoch)
        for b in range(state["batch"], per_epoch):
            if args.max_steps is not None and steps_here >= args.max_steps:
                stop = True
                break
            idx = order[b * min(batch, n) + rank * share : b * min(batch, n) + (rank + 1) * share]
            x, y = batch_of(data, idx, epoch, seed, settings.get("augment"))
            for g in opt.param_groups:
                g["lr"] = io.lr_at(opt_cfg.get("schedule"), state["step"], opt_cfg["lr"])
            opt.zero_grad(set_to_none=True)
            l, _ = loss_and_hits(loss, forward(net, x.to(device)), y.to(device), settings.get("labelSmoothing") or 0.0)
            l.backward()
            if settings.get("clipNorm"):
                # The engine's rule: scale every gradient by min(1, max_norm / (global norm + 1e-6)).
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings["clipNorm"])
            opt.step()
            state["step"] += 1
            state["batch"] = b + 1
            steps_here += 1
            window.append(l.detach())
            if len(window) == args.log_every:
                mean = torch.stack(window).mean()
                if world > 1:
                    dist.all_reduce(mean)
                    mean /= world
                log(rank, f"epoch {epoch + 1}/{epochs} step {state['step']}: loss {float(mean):.4f} ({steps_here * min(batch, n) / (time.time() - t0):.0f} samples/s)")
                window = []
        if not stop:
            state["epoch"], state["batch"] = epoch + 1, 0
            result = save()
            if result:
                l, acc, _ = result
                log(rank, f"epoch {state['epoch']}/{epochs}: test loss {l:.4f}" + ("" if acc is None else f", accuracy {100 * acc:.2f}%"))
    if stop or result is None:
        result = save()
    if rank == 0:
        l, acc, count = result
        print(f"test loss {l:.4f}" + ("" if acc is None else f", test accuracy {100 * acc:.2f}%") + f" ({count} samples)", flush=True)
        where = f"epoch {state['epoch'] + 1}, batch {state['batch']}" if state["batch"] else f"epoch {state['epoch']}"
        print(f"checkpoint written to {args.out} ({where}, step {state['step']})", flush=True)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


def spawned(rank, world, args):
    run(rank, world, rank, args)


def main():
    args = parse_args()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # launched by torchrun
        run(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)), args)
    elif args.nproc > 1:
        with open(os.path.join(HERE, "settings.json")) as f:
            batch = args.batch_size or json.load(f)["batchSize"]
        if batch % args.nproc:  # refused before any process starts
            raise SystemExit(f"train.py: the global batch size {batch} does not split evenly over {args.nproc} processes")
        with socket.socket() as s:  # a free port for the processes to meet on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(port))
        mp.spawn(spawned, args=(args.nproc, args), nprocs=args.nproc)
    else:
        run(0, 1, 0, args)


if __name__ == "__main__":
    main()
