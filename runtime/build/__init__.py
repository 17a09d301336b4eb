"""Dockerfile builds into the image store; see README.md for the pipeline."""

from runtime.build.builder import Builder, BuildError, BuildResult
from runtime.build.step_runner import StepRunner, UnshareStepRunner

__all__ = ["BuildError", "BuildResult", "Builder", "StepRunner", "UnshareStepRunner"]
