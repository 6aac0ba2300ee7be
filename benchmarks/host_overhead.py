"""The prefix scorer's host-side work (tokenizing, planning, masks, reading answers) beside its forward passes.

On a GPU a 135M model's forward passes take little time, so what the scorer does on the CPU around them decides
its speed. This runs our scorer with the GPU's layout (whole documents up to 2,048 tokens as one sequence) on a
tiny random-weight model of the embedded model's vocabulary, whose forward passes are cheap on the CPU too, and
prints the total time, the decoder's share, and the functions that took longest (cProfile):

    python benchmarks/host_overhead.py [CASE] [--docs N]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch
from lm_eval.tasks import TaskManager
from transformers import AutoModelForCausalLM

from bench_scoring import CASES, _embedded_shape, _requests
from harness.backends import PrefixSharingLM
from harness.paths import TASKS_DIR

TINY = {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16}


class DecoderClock:
    """Seconds spent inside the decoder's forward passes."""

    def __init__(self, decoder: torch.nn.Module) -> None:
        self.seconds, self._started = 0.0, 0.0
        decoder.register_forward_pre_hook(self._start)
        decoder.register_forward_hook(self._stop)

    def _start(self, *_) -> None:
        self._started = time.perf_counter()

    def _stop(self, *_) -> None:
        self.seconds += time.perf_counter() - self._started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", nargs="?", default="arc_challenge (25-shot)", choices=list(CASES))
    parser.add_argument("--docs", type=int, default=100)
    args = parser.parse_args()

    config, tokenizer = _embedded_shape()
    config.update(TINY)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    lm = PrefixSharingLM(pretrained=model, tokenizer=tokenizer, device="cpu", dtype="float32", batch_size="auto")
    lm.max_subtree_tokens = 2048  # the GPU's layout
    requests, docs = _requests(TaskManager(include_path=str(TASKS_DIR), include_defaults=False),
                               CASES[args.case], args.docs)
    lm.loglikelihood(requests[:40], disable_tqdm=True)  # warm-up
    clock = DecoderClock(model.get_decoder())
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    lm.loglikelihood(requests, disable_tqdm=True)
    profile.disable()
    total = time.perf_counter() - start
    print(f"{args.case}: {docs} docs, {len(requests)} requests, {lm.stats.forward_calls} forward passes: "
          f"{total:.2f} s in all, {clock.seconds:.2f} s in the decoder, {total - clock.seconds:.2f} s around it")
    pstats.Stats(profile).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
