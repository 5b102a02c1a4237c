"""PyTorch baseline for bench/train.ts (benchmark only: mobilize itself never needs Python).

The same fmnist-cnn (conv-bn-relu-pool x2 + linear, 16/32 channels) on the same Fashion-MNIST
files, with 2 threads. Prints one JSON object.

  /usr/bin/python3 bench/train_torch.py step [--steps N] [--batch 128] [--threads 2]
      median time of one training step (AdamW, lr 1e-3) and of the whole loop iteration
  /usr/bin/python3 bench/train_torch.py accuracy [--epochs 3] [--batch 128] [--lr 0.03] [--seed 0]
      mobilize's default recipe (AdamW, weight decay 0.01, 100 warm-up steps then cosine to 0,
      full batches only): test accuracy after each epoch
"""

import argparse
import gzip
import json
import math
import os
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load(split):
    folder = os.environ.get("MOBILIZE_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
    prefix = "train" if split == "train" else "t10k"
    with gzip.open(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.int64))


def fmnist_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10),
    )


def max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_time(args):
    x_all, y_all = load("train")
    model = fmnist_cnn()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    steps, loops = [], []
    warmup = 5
    for k in range(warmup + args.steps):
        t0 = time.perf_counter()
        lo = (k * args.batch) % (len(y_all) - args.batch)
        x, y = x_all[lo:lo + args.batch], y_all[lo:lo + args.batch]
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss_value = loss.item()
        t2 = time.perf_counter()
        if k >= warmup:
            steps.append((t2 - t1) * 1000)
            loops.append((t2 - t0) * 1000)
    return {
        "stepMs": float(np.median(steps)),
        "loopMs": float(np.median(loops)),
        "lastLoss": loss_value,
        "maxRssMB": max_rss_mb(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def accuracy(args):
    torch.manual_seed(args.seed)
    x_all, y_all = load("train")
    x_test, y_test = load("test")
    model = fmnist_cnn()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    per_epoch = len(y_all) // args.batch
    total = per_epoch * args.epochs
    warmup = min(100, total // 10)

    def factor(k):
        if k < warmup:
            return (k + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(k - warmup, total - warmup) / (total - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    gen = torch.Generator().manual_seed(args.seed)
    epochs = []
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(y_all), generator=gen)
        t0 = time.perf_counter()
        total_loss, hits, seen = 0.0, 0, 0
        for k in range(per_epoch):
            idx = order[k * args.batch:(k + 1) * args.batch]
            x, y = x_all[idx], y_all[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(y)
            hits += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        seconds = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            test_hits = sum((model(x_test[i:i + 1000]).argmax(1) == y_test[i:i + 1000]).sum().item() for i in range(0, len(y_test), 1000))
        epochs.append({
            "epoch": epoch + 1,
            "loss": total_loss / seen,
            "trainAccuracy": hits / seen,
            "testAccuracy": test_hits / len(y_test),
            "seconds": seconds,
        })
    return {"epochs": epochs, "maxRssMB": max_rss_mb(), "torch": torch.__version__, "threads": torch.get_num_threads()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["step", "accuracy"])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(step_time(args) if args.mode == "step" else accuracy(args)))


if __name__ == "__main__":
    main()
