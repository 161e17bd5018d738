"""The main job end to end (`edgerec demo`): every step of the product in one run."""

from edgerec.pipeline.demo import DemoConfig, run_demo

__all__ = ["DemoConfig", "run_demo"]
