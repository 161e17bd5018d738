"""The on-device runtime: open a bundle, keep history on the device, rank locally.

Imports only the standard library, numpy and one inference engine (loaded
when a model is first used); never torch, onnx or transformers.
"""

from edgerec.runtime.background import Background
from edgerec.runtime.bundle import Bundle
from edgerec.runtime.history import KEEP_EVERYTHING
from edgerec.runtime.pipeline import Pipeline, Stage
from edgerec.runtime.policies import Filters, Policy
from edgerec.runtime.recommender import Recommendation, Recommender, Retention
from edgerec.runtime.request import Request

__all__ = ["KEEP_EVERYTHING", "Background", "Bundle", "Filters", "Pipeline", "Policy", "Recommendation", "Recommender", "Request", "Retention",
           "Stage"]
