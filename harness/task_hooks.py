"""Functions that the YAML tasks in ``tasks/`` reference with ``!function``.

Docs come from :mod:`harness.data`; prompt functions are lm-eval's own, imported rather than copied,
so our tasks render exactly the prompts of lm-eval's built-in tasks.
"""

from __future__ import annotations

import datasets
from lm_eval.tasks.hellaswag.utils import process_docs as hellaswag_process_docs
from lm_eval.tasks.truthfulqa.utils import process_results_mc2
from lm_eval.tasks.winogrande.preprocess_winogrande import (
    doc_to_choice as winogrande_doc_to_choice,
)
from lm_eval.tasks.winogrande.preprocess_winogrande import (
    doc_to_target as winogrande_doc_to_target,
)
from lm_eval.tasks.winogrande.preprocess_winogrande import (
    doc_to_text as winogrande_doc_to_text,
)

from harness import data

__all__ = [
    "hellaswag_process_docs",
    "load_docs",
    "process_results_mc2",
    "winogrande_doc_to_choice",
    "winogrande_doc_to_target",
    "winogrande_doc_to_text",
]


def load_docs(dataset: str, subset: str | None = None, **_metadata: object) -> datasets.DatasetDict:
    """lm-eval ``custom_dataset`` hook: called with the task's ``dataset_kwargs`` and metadata."""
    return data.load_docs(dataset, subset)
