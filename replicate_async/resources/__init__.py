"""Resource namespaces of :class:`~replicate_async.AsyncReplicate`."""

from .account import AccountResource, DefaultWebhooks, HardwareResource, Search, Webhooks
from .collections import Collections
from .deployments import DeploymentPredictions, Deployments
from .files import Files
from .models import Examples, ModelPredictions, Models, Readme, Versions
from .predictions import Predictions
from .trainings import Trainings

__all__ = [
    "AccountResource",
    "Collections",
    "DefaultWebhooks",
    "DeploymentPredictions",
    "Deployments",
    "Examples",
    "Files",
    "HardwareResource",
    "ModelPredictions",
    "Models",
    "Predictions",
    "Readme",
    "Search",
    "Trainings",
    "Versions",
    "Webhooks",
]
