"""Prefix-sharing log-likelihood scoring: lm-eval's ``hf`` model, scored once per shared prefix.

lm-eval's ``hf`` backend runs every (context, continuation) pair through the model in full and takes a
log-softmax over every position of the vocabulary. Here requests are de-duplicated, sorted so that
requests sharing a token prefix (all choices of one doc; more generally any common prefix) sit together,
each group's common prefix is run once, and its continuations are scored in a batch against the
prefix's cached keys/values. Log-probabilities are taken only at continuation positions.

Tokenization, BOS handling and left truncation are lm-eval's own: this class only replaces
``_loglikelihood_tokens``, which receives the token ids lm-eval's ``loglikelihood`` produced.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from tqdm import tqdm

log = logging.getLogger(__name__)

Request = tuple[tuple[str, str], list[int], list[int]]


@dataclass(frozen=True)
class _Item:
    """One distinct request: its model input and how many trailing positions are continuation."""

    tokens: tuple[int, ...]  # model input: (context + continuation)[-(max_length + 1):][:-1]
    continuation: tuple[int, ...]


@dataclass
class ScoringStats:
    """What the last scoring call did: for benchmarks and tests."""

    requests: int = 0
    distinct: int = 0
    groups: int = 0
    tokens_forwarded: int = 0


def _common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def group_by_prefix(items: list[_Item], min_shared: int) -> list[tuple[int, list[int]]]:
    """Groups of item indices that share a token prefix, with the prefix length each group runs once.

    Items are visited in lexicographic token order (a depth-first walk of their prefix tree), and a
    group grows while the shared prefix stays at least ``min_shared`` tokens long. The prefix never
    reaches into a member's continuation, so every continuation position is scored by its own suffix.
    """
    order = sorted(range(len(items)), key=lambda i: items[i].tokens)
    groups: list[tuple[int, list[int]]] = []
    for index in order:
        item = items[index]
        limit = len(item.tokens) - len(item.continuation)
        if groups:
            shared, members = groups[-1]
            first = items[members[0]].tokens
            candidate = min(shared, _common_prefix_length(first, item.tokens), limit)
            if candidate >= min_shared:
                groups[-1] = (candidate, [*members, index])
                continue
        groups.append((limit, [index]))
    return groups


class PrefixSharingLM(HFLM):
    """lm-eval's ``hf`` model with prefix-shared, continuation-only log-likelihood scoring."""

    min_shared_prefix = 8

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stats = ScoringStats()
        self._kv_cache_ok = self.backend == "causal" and bool(getattr(self.model.config, "use_cache", True))
        if not self._kv_cache_ok:
            log.warning("%s cannot reuse a KV cache here: falling back to lm-eval's scoring",
                        type(self.model).__name__)

    def _loglikelihood_tokens(
        self, requests: list[Request], disable_tqdm: bool = False, override_bs: int | None = None
    ) -> list[tuple[float, bool]]:
        if not self._kv_cache_ok:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        window = self.max_length + 1
        keys = [(tuple(ctx), tuple(cont)) for _, ctx, cont in requests]
        distinct = list(dict.fromkeys(keys))
        items = [_Item(tuple((ctx + cont)[-window:][:-1]), cont) for ctx, cont in distinct]
        groups = group_by_prefix(items, self.min_shared_prefix)
        self.stats = ScoringStats(requests=len(requests), distinct=len(distinct), groups=len(groups))
        scores: dict[int, tuple[float, bool]] = {}
        batch = self._suffix_batch_size(override_bs)
        copies = Counter(keys)
        with tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0,
                  desc="Scoring log-likelihoods (shared prefixes)") as bar:
            for shared, members in sorted(groups, key=lambda g: -len(items[g[1][0]].tokens)):
                scores.update(self._score_group(items, shared, members, batch))
                bar.update(sum(copies[distinct[m]] for m in members))
        position = {key: i for i, key in enumerate(distinct)}
        results = [scores[position[key]] for key in keys]
        for (request, _, _), answer in zip(requests, results):
            self.cache_hook.add_partial("loglikelihood", request, answer)
        return results

    def _suffix_batch_size(self, override_bs: int | None) -> int:
        if self.batch_size == "auto":
            return override_bs or 32
        return max(int(self.batch_size), 1)

    @torch.no_grad()
    def _score_group(self, items: list[_Item], shared: int, members: list[int], batch: int):
        """(index, (log-likelihood, is_greedy)) for each member; the shared prefix runs once."""
        cache = None
        if shared > 0:
            prefix = torch.tensor([items[members[0]].tokens[:shared]], dtype=torch.long, device=self.device)
            cache = self.model(prefix, use_cache=True, logits_to_keep=1).past_key_values
            self.stats.tokens_forwarded += shared
        scored: list = []
        start = 0
        while start < len(members):
            chunk = members[start : start + batch]
            try:
                scored += self._score_chunk(items, shared, chunk, cache)
            except torch.OutOfMemoryError:
                if batch == 1:
                    raise
                batch //= 2  # back off and retry this chunk
                log.warning("out of memory: scoring batch size lowered to %d", batch)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            start += len(chunk)
        return scored

    @torch.no_grad()
    def _score_chunk(self, items: list[_Item], shared: int, chunk: list[int], cache) -> list:
        """Score one batch of suffixes against a copy of the prefix cache."""
        scored = []
        suffixes = [items[m].tokens[shared:] for m in chunk]
        ids = torch.full((len(chunk), max(len(s) for s in suffixes)), self.tokenizer.pad_token_id or 0,
                         dtype=torch.long, device=self.device)
        for row, suffix in enumerate(suffixes):
            ids[row, : len(suffix)] = torch.tensor(suffix, dtype=torch.long)
        self.stats.tokens_forwarded += sum(len(s) for s in suffixes)
        # Only the positions that predict a continuation token go through the output layer.
        spans = [(len(s) - len(items[m].continuation), len(s)) for s, m in zip(suffixes, chunk)]
        keep = sorted({p for begin, end in spans for p in range(begin, end)})
        column = {p: i for i, p in enumerate(keep)}
        kwargs: dict = {"logits_to_keep": torch.tensor(keep, device=self.device)}
        if cache is not None:
            expanded = copy.deepcopy(cache)
            expanded.batch_repeat_interleave(len(chunk))
            kwargs |= {"past_key_values": expanded, "use_cache": True}
        logits = self.model(ids, **kwargs).logits  # [batch, len(keep), vocab]
        for row, (m, (begin, end)) in enumerate(zip(chunk, spans)):
            rows = logits[row, [column[p] for p in range(begin, end)]]  # full output vocab, as lm-eval
            logprobs = F.log_softmax(rows, dim=-1, dtype=self.softmax_dtype)
            target = torch.tensor(items[m].continuation, dtype=torch.long, device=self.device)
            picked = logprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            scored.append((m, (float(picked.sum()), bool((logprobs.argmax(dim=-1) == target).all()))))
        return scored
