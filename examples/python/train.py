"""A training loop fed by genaug's online copy-paste stream (no export step).

    python examples/python/train.py --coco train.json --images train/ --pool pool/ [--steps 100]

With torch installed: a small CNN learns which categories an image contains
(multi-label), on 128 x 128 resized samples, with a DataLoader of 2 workers,
each reading its own shard of the stream. Images are decoded by torchvision
or Pillow, whichever is installed. Without torch it reads the stream in a
plain loop and prints what it saw, so the pipe can be checked anywhere.
Remaining arguments go to `genaug paste --stream` as they are (e.g. --seed 3 --epochs 2).
"""
import argparse
import collections
import io
import sys

from genaug_stream import PasteStream

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--steps", type=int, default=100, help="optimizer steps (torch) or samples read (no torch)")
parser.add_argument("--batch", type=int, default=8)
parser.add_argument("--workers", type=int, default=2, help="DataLoader workers, one stream shard each")
args, paste_args = parser.parse_known_args()

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

if torch is None:
    print("torch is not installed: reading the stream in a plain loop", file=sys.stderr)
    seen, categories = 0, collections.Counter()
    for sample in PasteStream(paste_args):
        meta = sample["json"]
        categories.update(a["category_name"] for a in meta["annotations"])
        pasted = sum(a["instance_source"] == "pasted" for a in meta["annotations"])
        print("%s: %dx%d, %d bytes, %d instances (%d pasted)" % (sample["__key__"], meta["width"], meta["height"], len(sample["jpg"]), len(meta["annotations"]), pasted))
        seen += 1
        if seen >= args.steps:
            break  # closes the pipe: genaug exits cleanly
    print("read %d samples; instances per category: %s" % (seen, dict(sorted(categories.items()))))
    sys.exit(0)


def decode(data):
    """JPEG bytes -> float tensor 3 x H x W in [0, 1]."""
    try:
        from torchvision.io import decode_jpeg

        return decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8)).float() / 255
    except ImportError:
        import numpy as np
        from PIL import Image

        return torch.from_numpy(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).copy()).permute(2, 0, 1).float() / 255


class Samples(torch.utils.data.IterableDataset):
    """The stream's samples as (image 3 x 128 x 128, multi-hot categories)."""

    def __init__(self, stream, classes):
        super().__init__()
        self.stream, self.classes = stream, classes

    def __iter__(self):
        for s in self.stream:
            x = F.interpolate(decode(s["jpg"])[None], size=(128, 128), mode="bilinear", align_corners=False)[0]
            y = torch.zeros(len(self.classes))
            for a in s["json"]["annotations"]:
                if a["category_id"] in self.classes:
                    y[self.classes[a["category_id"]]] = 1
            yield x, y


# The category ids: read from the COCO file given to genaug.
import json

coco_path = paste_args[paste_args.index("--coco") + 1]
with open(coco_path) as f:
    classes = {c["id"]: i for i, c in enumerate(sorted(json.load(f)["categories"], key=lambda c: c["id"]))}

# Each of the DataLoader's workers iterates its own copy of the dataset: PasteStream gives each one its shard.
loader = torch.utils.data.DataLoader(Samples(PasteStream(paste_args), classes), batch_size=args.batch, num_workers=args.workers)
model = torch.nn.Sequential(
    torch.nn.Conv2d(3, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
    torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
    torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, len(classes)),
)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
step = 0
for x, y in loader:
    loss = F.binary_cross_entropy_with_logits(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    step += 1
    if step % 10 == 0 or step == 1:
        print("step %d: loss %.4f" % (step, loss.item()))
    if step >= args.steps:
        break  # the workers stop; their genaug children see the pipe close and exit 0
print("trained %d steps" % step)
