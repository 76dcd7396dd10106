"""Pick a model from measurements (``recommend``) or, with none, from priors.

:func:`recommend` filters measured candidates by deployment constraints, ranks the rest
(quality first; candidates whose quality difference is not significant at 95 % count as
tied and the cheaper one wins: p95 latency, then inference memory, then size), and explains the choice with
the measured numbers. :func:`recommend_from_priors` answers before anything has been
measured, from the rules documented in ``docs/recommend-priors.md``.

* :mod:`~gptbert.recommend.constraints` - :class:`Constraints`, a candidate's operating point, violations;
* :mod:`~gptbert.recommend.ranking` - ties, rank, :func:`recommend`;
* :mod:`~gptbert.recommend.text` - every sentence of the measured recommendation
  (:mod:`~gptbert.recommend.numbers`: how numbers are written);
* :mod:`~gptbert.recommend.priors` - :func:`recommend_from_priors` and its rule tables;
* :mod:`~gptbert.recommend.profile` - :func:`profile_data_file` (through the data layer's profiler);
* :mod:`~gptbert.recommend.recommendation` - :class:`Recommendation`, the answer of both.

No torch here: this runs on results files.
"""

from __future__ import annotations

from gptbert.recommend.constraints import DEVICE_PRECISIONS, Constraints
from gptbert.recommend.priors import normalize_task, recommend_from_priors
from gptbert.recommend.profile import profile_data_file
from gptbert.recommend.ranking import recommend
from gptbert.recommend.recommendation import Recommendation

__all__ = [
    "Constraints",
    "Recommendation",
    "DEVICE_PRECISIONS",
    "normalize_task",
    "profile_data_file",
    "recommend",
    "recommend_from_priors",
]
