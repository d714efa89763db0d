"""Read `genaug paste --stream` from Python: online copy-paste samples with no export step.

    from genaug_stream import PasteStream
    ds = PasteStream(["--coco", "train.json", "--images", "train/", "--pool", "pool/", "--seed", "1"])
    for sample in ds:            # {"__key__": "img_0", "jpg": b"...", "json": {...}}
        ...

`PasteStream` is a `torch.utils.data.IterableDataset` when torch is installed
(a plain iterable otherwise). In a DataLoader each worker starts its own
`genaug paste --stream --shard I/N` child, I = this worker's global index:
rank * num_workers + worker id of world_size * num_workers (the RANK /
WORLD_SIZE torchrun sets, or torch.distributed when initialised). The shards
are disjoint and together are the whole stream, so the samples do not depend
on the number of workers. Only the standard library is needed to read the
stream (tarfile in stream mode); decoding the images is the caller's choice.

With webdataset instead, give one URL per worker (brace expansion makes them):

    import webdataset as wds
    url = "pipe:genaug paste --stream --coco train.json --images train/ --pool pool/ --seed 1 --shard {0..3}/4"
    ds = wds.WebDataset(url, shardshuffle=False).decode("rgb")   # DataLoader(ds, num_workers=4)

or set WORKER and NUM_WORKERS in a worker_init_fn: genaug reads the same
variables as webdataset's pytorch_worker_info() when --shard is not given.
"""
import json
import os
import shutil
import subprocess
import tarfile

try:  # a torch Dataset when torch is there, so DataLoader(num_workers=...) works
    from torch.utils.data import IterableDataset as _Base
    from torch.utils.data import get_worker_info as _worker_info
except ImportError:  # plain iteration without torch
    _Base = object

    def _worker_info():
        return None


def _rank():
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:
        pass
    return 0, 1


def genaug_command():
    """The genaug executable: $GENAUG, else `genaug` on the PATH, else `npx genaug`."""
    if os.environ.get("GENAUG"):
        return os.environ["GENAUG"].split()
    found = shutil.which("genaug")
    return [found] if found else ["npx", "--no-install", "genaug"]


class PasteStream(_Base):
    """The samples of `genaug paste --stream <args>` for this process's shard.

    args: the paste options (--coco, --images, --pool, --seed, --epochs, ...).
    shard: "I/N" to force one; by default it comes from the DataLoader worker and the rank.
    """

    def __init__(self, args, shard=None, command=None):
        super().__init__()
        self.args = list(args)
        self.shard = shard
        self.command = command or genaug_command()

    def _shard(self):
        if self.shard:
            return self.shard
        rank, world = _rank()
        info = _worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return "%d/%d" % (rank * workers + worker, world * workers)

    def __iter__(self):
        cmd = self.command + ["paste", "--stream", "--shard", self._shard(), "-q"] + self.args
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        sample = {}
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                for member in tar:
                    key, _, field = member.name.partition(".")
                    if sample and sample["__key__"] != key:
                        yield sample
                        sample = {}
                    data = tar.extractfile(member).read()
                    sample["__key__"] = key
                    sample[field] = json.loads(data) if field == "json" else data
            if sample:
                yield sample
        finally:
            # Leaving early (break, an exception, the DataLoader shutting down) closes the pipe:
            # genaug sees EPIPE and exits 0.
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            raise RuntimeError("%s exited with %d" % (" ".join(cmd), code))
