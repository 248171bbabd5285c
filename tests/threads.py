"""Tiny models run no slower on one thread, and far steadier on a shared 2-core machine (see ENVIRONMENT.md):
OpenMP threads spinning against other processes made the training tests several times slower."""

import contextlib

import torch


@contextlib.contextmanager
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
