"""Turing: contract-validated LLM workflows over the rows of your database.

The public surface is what `__all__` lists; everything else is private and may change.
"""

from turing.actors.base import Actor, Message, ModelRequest, ModelResponse, Usage
from turing.actors.fake import FakeModel
from turing.checks import Check
from turing.config import Config, load_config
from turing.consistency import Consistency
from turing.contracts import Contract
from turing.errors import (
    ActorError,
    ConfigError,
    ContractViolation,
    InputInvalid,
    ScriptError,
    TemplateRenderError,
    TuringError,
    UnknownWorkflowError,
    Violation,
    WorkflowDefinitionError,
)
from turing.executor import Executor
from turing.grading import Grade
from turing.orchestrator import ChainReport, Discovery, Orchestrator, Report
from turing.project import Project
from turing.registry import Registry
from turing.repair import Repair, repair
from turing.result import Attempt, RunError, RunResult, StepResult
from turing.retry import RetryPolicy
from turing.sandbox import Sandbox
from turing.scripts import ScriptContext
from turing.sources import Sink, SinkSQL, Source, SourceFilter
from turing.steps import LLMStep, ScriptStep
from turing.workflow import Workflow

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorError",
    "Attempt",
    "ChainReport",
    "Check",
    "Config",
    "ConfigError",
    "Consistency",
    "Contract",
    "ContractViolation",
    "Discovery",
    "Executor",
    "FakeModel",
    "Grade",
    "InputInvalid",
    "LLMStep",
    "Message",
    "ModelRequest",
    "ModelResponse",
    "Orchestrator",
    "Project",
    "Registry",
    "Repair",
    "Report",
    "RetryPolicy",
    "RunError",
    "RunResult",
    "Sandbox",
    "ScriptContext",
    "ScriptError",
    "ScriptStep",
    "Sink",
    "SinkSQL",
    "Source",
    "SourceFilter",
    "StepResult",
    "TemplateRenderError",
    "TuringError",
    "UnknownWorkflowError",
    "Usage",
    "Violation",
    "Workflow",
    "WorkflowDefinitionError",
    "__version__",
    "load_config",
    "repair",
]
