"""The main job end to end (`edgerec demo`): every step of the product as a list of studies."""

from edgerec.pipeline.demo import DemoConfig, demo_report, demo_studies, run_demo

__all__ = ["DemoConfig", "demo_report", "demo_studies", "run_demo"]
