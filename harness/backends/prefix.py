"""Prefix-sharing log-likelihood scoring: lm-eval's ``hf`` model, each shared prefix run once.

lm-eval's ``hf`` backend runs every (context, continuation) pair through the model in full and takes a
log-softmax over every position of the vocabulary. Here requests are de-duplicated and laid out as a
prefix tree over their token inputs: a node is a token prefix shared by several inputs (MMLU: a
subject's 5-shot prefix, then nothing more, since a doc's answer letters share one input; TruthfulQA:
the fixed 6-shot preamble, then each question, then the answers).

Whatever fits in one sequence is laid out as a token tree (a "pack"): each shared token appears once,
and an attention mask lets every token see only its own ancestors (tree attention), with position ids
that follow each branch. A document whose whole subtree is small (its few-shot prefix and its
endings: WinoGrande's on any device, ARC's and HellaSwag's ~1,000 tokens on a GPU) is one pack, and
the packs of many documents, batched by length, go through the model in one padded forward pass. A node too large for one pack (a prefix shared by many
documents) runs once, and what lies below it is scored the same way against its cached keys/values,
which every batch reads as an expanded view, never a copy. Log-probabilities are taken only at
continuation positions, and the output layer runs only there.

Tokenization, BOS handling and left truncation are lm-eval's own: this class replaces
``_loglikelihood_tokens``, which receives the token ids lm-eval's ``loglikelihood`` produced, and has the
strings ``loglikelihood`` will encode tokenized beforehand, each distinct one once, in one batch call on the
tokenizer's threads (the same tokenizer call per string as lm-eval's ``tok_encode``, so the same ids).
"""
from __future__ import annotations

import copy
import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psutil
import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import _add_special_kwargs, has_bos_prefix
from tqdm import tqdm

log = logging.getLogger(__name__)

Request = tuple[tuple[str, str], list[int], list[int]]

MAX_AUTO_TOKENS = 32768  # the most positions ``batch_size="auto"`` puts in one forward pass


@dataclass(frozen=True)
class Row:
    """One distinct model input and the first position whose logits some request needs.

    A prefix shared with other rows may reach up to ``begin`` tokens: from there on, positions
    predict continuation tokens and must be computed on this row's own suffix.
    """

    tokens: tuple[int, ...]
    begin: int


@dataclass
class Node:
    """A prefix run once (``tokens[:depth]`` of any of its rows), with the rows and nodes below it."""

    depth: int
    leaves: list[int] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)

    def rows(self) -> list[int]:
        return self.leaves + [row for child in self.children for row in child.rows()]

    def first_row(self) -> int:
        return self.leaves[0] if self.leaves else self.children[0].first_row()


@dataclass(frozen=True)
class Pack:
    """Suffixes of rows scored as one sequence: their tokens laid out as a token tree.

    ``parents[j]`` is the pack index of token ``j``'s predecessor (-1 where a suffix starts), and
    ``paths[row]`` the pack index of each token of the row's suffix: a token shared by several rows'
    suffixes appears once, and its logits serve all of them.
    """

    rows: tuple[int, ...]
    tokens: tuple[int, ...]
    parents: tuple[int, ...]
    paths: dict[int, tuple[int, ...]]

    def levels(self) -> list[int]:
        """Each token's distance from the start of its suffix."""
        levels: list[int] = []
        for parent in self.parents:
            levels.append(levels[parent] + 1 if parent >= 0 else 0)
        return levels

    def ancestry(self) -> torch.Tensor:
        """``[len, len]`` booleans: token ``i`` may attend to token ``j`` (``j`` is ``i`` or an ancestor).

        Filled one chain at a time (a run of tokens each the child of the one before; a few per document),
        not token by token: a chain's tokens see what its first token's parent sees, and the chain up to
        themselves. Parents precede their children, so that parent's row is complete when it is read."""
        n = len(self.tokens)
        allowed = torch.zeros(n, n, dtype=torch.bool)
        starts = [i for i, parent in enumerate(self.parents) if parent < 0 or parent != i - 1] + [n]
        for start, end in zip(starts, starts[1:]):
            if self.parents[start] >= 0:
                allowed[start:end] = allowed[self.parents[start]]
            allowed[start:end, start:end] |= torch.ones(end - start, end - start, dtype=torch.bool).tril()
        return allowed


def pack(suffixes: dict[int, tuple[int, ...]]) -> Pack:
    """The token tree of ``suffixes`` (row -> suffix tokens), laid out in insertion order."""
    tokens: list[int] = []
    parents: list[int] = []
    index: dict[tuple[int, int], int] = {}  # (parent index, token) -> pack index
    paths: dict[int, tuple[int, ...]] = {}
    for row, suffix in suffixes.items():
        path: list[int] = []
        parent = -1
        for token in suffix:
            if (parent, token) not in index:
                index[parent, token] = len(tokens)
                tokens.append(token)
                parents.append(parent)
            parent = index[parent, token]
            path.append(parent)
        paths[row] = tuple(path)
    return Pack(tuple(suffixes), tuple(tokens), tuple(parents), paths)


def plan_packs(rows: list[Row], leaves: list[int], depth: int, max_tokens: int | None) -> list[Pack]:
    """``leaves``' suffixes past ``depth``, packed: lexicographic neighbours that share a first token go
    into one pack while its token tree stays within ``max_tokens`` (``None``: one row per pack)."""
    order = sorted(leaves, key=lambda r: rows[r].tokens[depth:])
    groups: list[dict[int, tuple[int, ...]]] = []
    size = 0  # tokens in the last group's tree
    previous: tuple[int, ...] = ()
    for row in order:
        suffix = rows[row].tokens[depth:]
        shared = common_prefix_length(previous, suffix)
        if groups and max_tokens is not None and shared > 0 and size + len(suffix) - shared <= max_tokens:
            groups[-1][row] = suffix
            size += len(suffix) - shared  # sorted order: the last suffix is the closest one
        else:
            groups.append({row: suffix})
            size = len(suffix)
        previous = suffix
    return [pack(group) for group in groups]


@dataclass
class ScoringStats:
    """What the last scoring call did: for benchmarks and tests."""

    requests: int = 0
    distinct: int = 0
    rows: int = 0
    nodes: int = 0
    tokens_forwarded: int = 0  # real tokens through the model
    padding_tokens: int = 0  # pad positions of batched suffixes (forwarded too, never read)
    forward_calls: int = 0


@dataclass(frozen=True)
class _Pass:
    """One scoring call: its rows, the distinct requests read from each row, and where answers go."""

    rows: list[Row]
    requests: list[tuple[tuple[int, ...], tuple[int, ...]]]  # distinct (context, continuation)
    wanted: dict[int, list[int]]  # row -> distinct requests read from its logits
    done: Callable[[int, dict[int, tuple[float, bool]]], None]  # (row, {request: answer})
    override_bs: int | None


def model_input(context: Sequence[int], continuation: Sequence[int], max_length: int) -> tuple[int, ...]:
    """The tokens lm-eval's ``hf`` feeds the model for a request: left-truncated, last token dropped."""
    return tuple((list(context) + list(continuation))[-(max_length + 1):][:-1])


def encoded_strings(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, bool | None]]:
    """The ``(string, add_special_tokens)`` lm-eval's ``loglikelihood`` encodes for each (context, continuation):
    after an empty context the continuation alone; else the whole and the context, the context's trailing
    spaces moved to the continuation (``TemplateLM._encode_pair``)."""
    strings: list[tuple[str, bool | None]] = []
    for context, continuation in pairs:
        if not context:
            strings.append((continuation, False))
            continue
        spaces = len(context) - len(context.rstrip())
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        strings += [(context + continuation, None), (context, None)]
    return strings


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def prefix_tree_size(sequences: Sequence[tuple[int, ...]]) -> int:
    """Tokens in the prefix tree of ``sequences``: each sorted sequence adds what it does not share with
    the one before it. The least any exact scorer must forward."""
    size, previous = 0, ()
    for sequence in sorted(set(sequences)):
        size += len(sequence) - common_prefix_length(previous, sequence)
        previous = sequence
    return size


def build_tree(rows: list[Row], min_shared: int) -> Node:
    """The prefix tree of ``rows``: a node wherever two or more rows share ``min_shared`` more tokens.

    Rows are visited in lexicographic token order; consecutive rows whose common prefix (capped at
    each row's ``begin``) reaches ``min_shared`` tokens past the parent's depth form one child, whose
    depth is the common prefix of all its rows; each child is split the same way below its depth.
    """
    order = sorted(range(len(rows)), key=lambda i: rows[i].tokens)
    return _split(rows, order, Node(depth=0), min_shared)


def _split(rows: list[Row], members: list[int], node: Node, min_shared: int) -> Node:
    runs: list[tuple[int, list[int]]] = []  # (shared depth, consecutive members)
    for index in members:
        row = rows[index]
        if runs:
            shared, run = runs[-1]
            depth = min(shared, common_prefix_length(rows[run[0]].tokens, row.tokens), row.begin)
            if depth >= node.depth + min_shared:
                runs[-1] = (depth, [*run, index])
                continue
        runs.append((row.begin, [index]))
    for shared, run in runs:
        if len(run) == 1:
            node.leaves.append(run[0])
        else:
            node.children.append(_split(rows, run, Node(depth=shared), min_shared))
    return node


def out_of_memory(exc: BaseException) -> bool:
    """CUDA raises ``torch.OutOfMemoryError``; the CPU allocator a ``RuntimeError`` that says so."""
    return isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in str(exc)


def tree_attention_supported(model) -> bool:
    """Whether ``model`` takes a custom 4D attention mask with explicit positions: sdpa or eager attention,
    positions from a ``position_ids`` argument (not ALiBi, which reads them off a 2D mask), and no sliding
    window (which a custom mask would silently drop)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return (getattr(model.config, "_attn_implementation", None) in ("sdpa", "eager")
            and "position_ids" in inspect.signature(model.forward).parameters
            and not getattr(config, "alibi", False)
            and getattr(config, "sliding_window", None) is None)


# Config fields of models whose logits are more than the output layer applied to the last hidden state.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def split_output_layer(model) -> tuple[torch.nn.Module, torch.nn.Module] | None:
    """(decoder, output layer) when ``model``'s logits are exactly ``output_layer(decoder(...)[0])``, so the
    output layer can be applied only where a continuation token is predicted; None otherwise."""
    config = model.config.get_text_config()
    if any(getattr(config, name, None) not in (None, 1, 1.0) for name in _LOGIT_TRANSFORMS):
        return None
    decoder, head = getattr(model, "get_decoder", lambda: None)(), model.get_output_embeddings()
    return (decoder, head) if isinstance(decoder, torch.nn.Module) and isinstance(head, torch.nn.Linear) else None


def expanded_view(cache, rows: int):
    """``cache`` (one sequence) seen as ``rows`` sequences without copying: each layer's keys and values are
    expanded views. A forward pass concatenates its new keys/values into new tensors, so ``cache`` itself is
    left as it was and can serve the next batch."""
    view = copy.copy(cache)
    view.layers = []
    for layer in cache.layers:
        layer = copy.copy(layer)
        layer.keys = layer.keys.expand(rows, *layer.keys.shape[1:])
        layer.values = layer.values.expand(rows, *layer.values.shape[1:])
        view.layers.append(layer)
    return view


def _kv_bytes_per_token(config, dtype: torch.dtype) -> int:
    """Bytes of cached keys and values per token, from the model config."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = getattr(config, "num_attention_heads", 1)
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * torch.finfo(dtype).bits // 8


class PrefixSharingLM(HFLM):
    """lm-eval's ``hf`` model with prefix-tree, continuation-only log-likelihood scoring."""

    min_shared_prefix = 8
    max_pack_tokens = 256  # the largest token tree packed into one sequence from several suffixes
    min_fill = 0.8  # a batch's shortest pack has at least this share of its longest one's tokens
    _encoded: dict[tuple[str, bool | None], list[int]] = {}  # during loglikelihood: its strings, tokenized

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stats = ScoringStats()
        self._oom_tokens: int | None = None  # positions per forward pass after an out-of-memory error
        # The largest subtree (a node and all below it) laid out as one sequence. Its tree mask makes attention
        # quadratic in its length: on the CPU, where batching gains little, ARC's and HellaSwag's ~1,000-token
        # documents ran 16-31% slower as one sequence each than as a cached prefix with its endings
        # (benchmarks/README.md).
        self.max_subtree_tokens = 2048 if self.device.type == "cuda" else 256
        self._kv_cache_ok = self.backend == "causal" and bool(getattr(self.model.config, "use_cache", True))
        if not self._kv_cache_ok:
            log.warning("%s cannot reuse a KV cache here: falling back to lm-eval's scoring",
                        type(self.model).__name__)
        self._tree_attention = self._kv_cache_ok and tree_attention_supported(self.model)
        self._split = split_output_layer(self.model) if self._kv_cache_ok else None
        if self._kv_cache_ok and not self._tree_attention:
            log.info("%s: no tree attention (needs sdpa or eager attention, position ids and no sliding "
                     "window); suffixes are scored one per sequence", type(self.model).__name__)

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """lm-eval's, with the strings it encodes tokenized beforehand in one batch (see the module's note)."""
        self._encoded = self._encode_all(encoded_strings([request.args for request in requests]))
        try:
            return super().loglikelihood(requests, disable_tqdm=disable_tqdm)
        finally:
            self._encoded = {}

    def _encode_all(self, strings: list[tuple[str, bool | None]]) -> dict[tuple[str, bool | None], list[int]]:
        """Each distinct string tokenized with the arguments lm-eval's ``tok_encode`` would pass for it."""
        bos = self.tokenizer.decode(self.prefix_token_id)
        groups: dict[tuple, list[tuple[str, bool | None]]] = {}
        for string, add_special_tokens in dict.fromkeys(strings):
            kwargs = _add_special_kwargs(add_special_tokens, self.add_bos_token)
            if add_special_tokens is None and has_bos_prefix(string, bos):
                kwargs["add_special_tokens"] = False
            groups.setdefault(tuple(sorted(kwargs.items())), []).append((string, add_special_tokens))
        encoded = {}
        for kwargs, members in groups.items():
            encoded.update(zip(members, self.tokenizer([string for string, _ in members], **dict(kwargs))["input_ids"]))
        return encoded

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, left_truncate_len: int | None = None,
                   **kwargs) -> list[int]:
        encoding = None if kwargs else self._encoded.get((string, add_special_tokens))
        if encoding is None:  # not foreseen: lm-eval's own call
            return super().tok_encode(string, add_special_tokens=add_special_tokens,
                                      left_truncate_len=left_truncate_len, **kwargs)
        return list(encoding[-left_truncate_len:] if left_truncate_len else encoding)

    def _loglikelihood_tokens(
        self, requests: list[Request], disable_tqdm: bool = False, override_bs: int | None = None
    ) -> list[tuple[float, bool]]:
        if not self._kv_cache_ok:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        keys = [(tuple(ctx), tuple(cont)) for _, ctx, cont in requests]
        distinct = list(dict.fromkeys(keys))
        inputs = [model_input(ctx, cont, self.max_length) for ctx, cont in distinct]
        row_of = {tokens: i for i, tokens in enumerate(dict.fromkeys(inputs))}
        begins: dict[int, int] = {}
        for tokens, (_, cont) in zip(inputs, distinct):
            row = row_of[tokens]
            begins[row] = min(begins.get(row, len(tokens)), len(tokens) - len(cont))
        rows = [Row(tokens, begins[i]) for tokens, i in row_of.items()]
        wanted: dict[int, list[int]] = {}  # row -> distinct requests read from its logits
        for request, tokens in enumerate(inputs):
            wanted.setdefault(row_of[tokens], []).append(request)
        tree = build_tree(rows, self.min_shared_prefix)
        self.stats = ScoringStats(requests=len(requests), distinct=len(distinct), rows=len(rows))
        position = {key: i for i, key in enumerate(distinct)}
        cache_keys: dict[int, list[tuple[str, str]]] = {}  # distinct request -> lm-eval's keys of its copies
        for (request, _, _), key in zip(requests, keys):
            cache_keys.setdefault(position[key], []).append(request)
        scores: dict[int, tuple[float, bool]] = {}
        with tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0,
                  desc="Scoring log-likelihoods (prefix tree)") as bar:

            def done(row: int, answers: dict[int, tuple[float, bool]]) -> None:
                scores.update(answers)
                for index, answer in answers.items():  # stored as each batch finishes (resumable runs)
                    for request in cache_keys[index]:
                        if request is not None:  # rolling-window requests have no cache key
                            self.cache_hook.add_partial("loglikelihood", request, answer)
                bar.update(sum(len(cache_keys[index]) for index in answers))

            self._score_below(_Pass(rows, distinct, wanted, done, override_bs), tree, None)
        return [scores[position[key]] for key in keys]

    @torch.no_grad()
    def _score_below(self, work: _Pass, node: Node, cache) -> None:
        """Score every row below ``node``, whose first ``node.depth`` tokens are in ``cache`` (None: none).

        The leaves' suffixes and every child whose whole subtree (past ``node.depth``) fits in
        :attr:`max_subtree_tokens` become packs, scored in batches against the cache: below the root, the
        documents' own subtrees, many per forward pass. A larger child runs its own tokens once on the cache
        and is scored the same way below."""
        depth = node.depth
        packs = plan_packs(work.rows, node.leaves, depth, self.max_pack_tokens if self._tree_attention else None)
        larger = []
        for child in node.children:
            fits = self._tree_attention and child.depth - depth <= self.max_subtree_tokens  # else its prefix alone is too long
            whole = pack({row: work.rows[row].tokens[depth:] for row in child.rows()}) if fits else None
            if whole is not None and len(whole.tokens) <= self.max_subtree_tokens:
                packs.append(whole)
            else:
                larger.append(child)
        self._score_packs(work, packs, cache, depth)
        for child in larger:
            self._score_below(work, child, self._run_node(work, child, cache, depth))

    @torch.no_grad()
    def _run_node(self, work: _Pass, node: Node, cache, depth: int):
        """``node``'s tokens past ``depth``, run once on top of ``cache`` (left unchanged): the cache below it."""
        extension = work.rows[node.first_row()].tokens[depth : node.depth]
        ids = torch.tensor([extension], dtype=torch.long, device=self.device)
        kwargs = {"past_key_values": expanded_view(cache, 1) if cache is not None else None, "use_cache": True}
        self.stats.nodes += 1
        self.stats.forward_calls += 1
        self.stats.tokens_forwarded += len(extension)
        if self._split:  # no logits are read here
            return self._split[0](ids, **kwargs).past_key_values
        return self.model(ids, **kwargs, logits_to_keep=1).past_key_values

    @functools.cached_property
    def _kv_bytes(self) -> int:
        return _kv_bytes_per_token(self.model.config, next(self.model.parameters()).dtype)

    def _rows_per_batch(self, depth: int, width: int, override_bs: int | None) -> int:
        """Sequences of ``width`` tokens per forward pass against a cache of ``depth``: the fixed batch size,
        or (``auto``) the tokens that fit in memory; never more tokens than an out-of-memory error backed
        off to."""
        rows = self._fitting_rows(depth, width, override_bs)
        return max(1, min(rows, self._oom_tokens // width)) if self._oom_tokens else rows

    def _fitting_rows(self, depth: int, width: int, override_bs: int | None) -> int:
        if self.batch_size != "auto":
            return max(int(self.batch_size), 1)
        if override_bs:
            return override_bs
        if self.device.type == "cuda":
            free = torch.cuda.mem_get_info(self.device)[0] * 0.6
        else:
            free = psutil.virtual_memory().available * 0.25
        config = self.model.config.get_text_config()
        hidden = config.hidden_size
        intermediate = getattr(config, "intermediate_size", None) or 4 * hidden
        element = torch.finfo(next(self.model.parameters()).dtype).bits // 8
        per_row = ((depth + width) * self._kv_bytes  # the batch's keys/values, all layers
                   + width * (4 * hidden + 3 * intermediate) * element  # one layer's activations
                   + 2 * config.num_attention_heads * width * (depth + width) * 4  # attention scores and mask
                   + 2 * width * config.vocab_size * 4)  # logits and log-softmax at up to every position
        return int(max(1, min(MAX_AUTO_TOKENS // width, free // max(per_row, 1))))

    @torch.no_grad()
    def _score_packs(self, work: _Pass, packs: list[Pack], cache, depth: int) -> None:
        """Score ``packs`` (tokens past ``depth``) in batches against ``cache``, longest first.

        A batch holds packs of similar length (none shorter than :attr:`min_fill` of the batch's longest), so
        padding stays small; its size is the batch size, or (``auto``) what fits at that length."""
        packs = sorted(packs, key=lambda p: -len(p.tokens))
        start = 0
        while start < len(packs):
            width = len(packs[start].tokens)
            end, most = start + 1, start + self._rows_per_batch(depth, width, work.override_bs)
            while end < min(most, len(packs)) and len(packs[end].tokens) >= self.min_fill * width:
                end += 1
            chunk = packs[start:end]
            try:
                answers = self._score_chunk(work, chunk, cache, depth)
            except (torch.OutOfMemoryError, RuntimeError) as exc:
                if not out_of_memory(exc) or len(chunk) == 1:
                    raise
                self._oom_tokens = len(chunk) * width // 2  # back off, for this and later batches
                log.warning("out of memory: at most %d tokens per forward pass from now on", self._oom_tokens)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            for row in (row for p in chunk for row in p.rows):
                work.done(row, answers[row])
            start += len(chunk)

    def _tree_mask(self, chunk: list[Pack], depth: int, width: int) -> torch.Tensor:
        """``[batch, 1, width, depth + width]``: every token sees the cached prefix and its own ancestors
        in its pack (padding sees itself), as booleans for sdpa or an additive mask for eager attention."""
        allowed = torch.zeros(len(chunk), 1, width, depth + width, dtype=torch.bool)
        allowed[..., :depth] = True
        for i, p in enumerate(chunk):
            allowed[i, 0, : len(p.tokens), depth : depth + len(p.tokens)] = p.ancestry()
        padding = torch.arange(width)
        allowed[:, 0, padding, depth + padding] |= padding >= torch.tensor([[len(p.tokens)] for p in chunk])
        allowed = allowed.to(self.device)
        if self.model.config._attn_implementation == "sdpa":
            return allowed
        dtype = next(self.model.parameters()).dtype
        return torch.zeros(allowed.shape, dtype=dtype, device=self.device).masked_fill(
            ~allowed, torch.finfo(dtype).min)

    @torch.no_grad()
    def _score_chunk(self, work: _Pass, chunk: list[Pack], cache, depth: int) -> dict:
        """One forward pass over a batch of packs; each request's (log-likelihood, is_greedy)."""
        width = max(len(p.tokens) for p in chunk)
        ids = torch.full((len(chunk), width), self.tokenizer.pad_token_id or 0, dtype=torch.long,
                         device=self.device)
        for i, p in enumerate(chunk):
            ids[i, : len(p.tokens)] = torch.tensor(p.tokens, dtype=torch.long)
        self.stats.tokens_forwarded += sum(len(p.tokens) for p in chunk)
        self.stats.padding_tokens += len(chunk) * width - sum(len(p.tokens) for p in chunk)
        self.stats.forward_calls += 1
        # Where each request's continuation is predicted: (pack, pack positions).
        targets: dict[tuple[int, int], tuple[int, tuple[int, ...]]] = {}
        for i, p in enumerate(chunk):
            for r in p.rows:
                for request in work.wanted[r]:
                    targets[r, request] = (i, p.paths[r][len(p.paths[r]) - len(work.requests[request][1]):])
        # Only the positions that predict a continuation token go through the output layer: each row's own
        # (decoder, then output layer on the gathered states), else the union of all rows' (logits_to_keep).
        wanted = sorted({(i, q) for i, positions in targets.values() for q in positions})
        keep = sorted({q for _, q in wanted})
        kwargs: dict = {} if self._split else {"logits_to_keep": torch.tensor(keep, device=self.device)}
        if self._tree_attention:
            positions = torch.full((len(chunk), width), depth, dtype=torch.long)
            for i, p in enumerate(chunk):
                positions[i, : len(p.tokens)] += torch.tensor(p.levels(), dtype=torch.long)
            kwargs |= {"attention_mask": self._tree_mask(chunk, depth, width),
                       "position_ids": positions.to(self.device)}
        if cache is not None:
            kwargs |= {"past_key_values": expanded_view(cache, len(chunk)), "use_cache": True}
        if self._split:
            decoder, head = self._split
            hidden = decoder(ids, **kwargs).last_hidden_state  # [batch, width, hidden]
            at = torch.tensor(wanted, dtype=torch.long, device=self.device)
            logits = head(hidden[at[:, 0], at[:, 1]])  # [len(wanted), vocab]
            index = {pair: k for k, pair in enumerate(wanted)}
            logits_of = lambda i, positions: logits[[index[i, q] for q in positions]]  # noqa: E731
        else:
            kept = self.model(ids, **kwargs).logits  # [batch, len(keep), vocab]
            column = {q: k for k, q in enumerate(keep)}
            logits_of = lambda i, positions: kept[i, [column[q] for q in positions]]  # noqa: E731
        answers: dict[int, dict[int, tuple[float, bool]]] = {r: {} for p in chunk for r in p.rows}
        for (r, request), (i, positions) in targets.items():
            selected = logits_of(i, positions)  # full output vocab, as lm-eval
            logprobs = F.log_softmax(selected, dim=-1, dtype=self.softmax_dtype)
            target = torch.tensor(work.requests[request][1], dtype=torch.long, device=self.device)
            picked = logprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
            answers[r][request] = (float(picked.sum()), bool((logprobs.argmax(dim=-1) == target).all()))
        return answers
