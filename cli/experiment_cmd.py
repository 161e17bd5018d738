"""`edgerec experiment simulate | ab | aa | interleave | ope | sensitivity | agreement`: simulated experiments;
`edgerec experiment analyze`: a real one, from the devices' private reports.

Each command builds its study from the options, prints its tables (and the
verdict with the rule that decided it), and writes JSON and a plot when asked.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import click

from edgerec.cli.output import FILE_OUT, PLOT_OUT, SEED, example
from edgerec.cli.study_cmd import DIR, _run
from edgerec.errors import ConfigError

BUNDLE = click.Path(exists=True, path_type=Path)


def _policy(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # also nesting too deep, integers of over 4,300 digits
        raise ConfigError(f"--policy must be a JSON object such as '{{\"diversity\": 0.5}}' ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError("--policy must be a JSON object such as '{\"diversity\": 0.5}'")
    return value


SIM_KEYS = ("users", "days", "pre_days", "k", "seed", "click_model", "visits_sigma", "lists_sigma")


def _sim(users, days, pre_days, k, seed, click_model, visits_sigma, lists_sigma):
    from edgerec.studies.activity import ActivityConfig
    from edgerec.studies.simulator import SimConfig

    return SimConfig(users=users, days=days, pre_days=pre_days, k=k, seed=seed, click_model=click_model,
                     activity=ActivityConfig(visits_sigma=visits_sigma, lists_sigma=lists_sigma))


def sim_options(days: int = 7, pre_days: int = 3, users: int = 200):
    """The simulator's options, shared by every command; the command gets them as one SimConfig, `sim`."""
    from edgerec.studies.activity import ActivityConfig

    defaults = ActivityConfig()

    def wrap(fn):
        @functools.wraps(fn)
        def command(**kwargs):
            return fn(sim=_sim(**{key: kwargs.pop(key) for key in SIM_KEYS}), **kwargs)

        for option in reversed([
            click.option("--data", "data_dir", required=True, type=DIR, help="The data the bundles were built on."),
            click.option("--users", default=users, show_default=True, type=click.IntRange(min=2),
                         help="Simulated users (at least 2: one per arm)."),
            click.option("--days", default=days, show_default=True, type=click.IntRange(min=1),
                         help="Days of the experiment."),
            click.option("--pre-days", default=pre_days, show_default=True, type=click.IntRange(min=0),
                         help="Days before it under the control (CUPED's pre-period)."),
            click.option("--k", default=10, show_default=True, type=click.IntRange(min=1), help="Items per list."),
            click.option("--seed", default=0, show_default=True, type=SEED),
            click.option("--click-model", type=click.Choice(["pbm", "cascade"]), default="pbm", show_default=True),
            click.option("--visits-sigma", default=defaults.visits_sigma, show_default=True,
                         help="Spread of log visits per day across users (0: all alike)."),
            click.option("--lists-sigma", default=defaults.lists_sigma, show_default=True,
                         help="Spread of log session depth across users."),
            click.option("--json", "json_out", type=FILE_OUT),
        ]):
            command = option(command)
        return command
    return wrap


def _arms(control, treatment, policy_a, policy_b):
    from edgerec.studies.simulator import Arm

    return Arm("control", control, _policy(policy_a)), Arm("treatment", treatment or control, _policy(policy_b))


def two_arms(fn):
    for option in reversed([
        click.argument("control", type=BUNDLE),
        click.argument("treatment", type=BUNDLE, required=False),
        click.option("--policy-a", help="JSON Policy fields for the control, e.g. '{\"diversity\": 0.2}'."),
        click.option("--policy-b", help="JSON Policy fields for the treatment (same bundle when TREATMENT is "
                                        "left out)."),
    ]):
        fn = option(fn)
    return fn


@click.group("experiment", epilog=example("edgerec experiment ab runs/demo/bundle runs/demo/bundle-fp32 "
                                          "--data runs/demo/data"))
def experiment_group() -> None:
    """Online experiments on simulated users through the real runtime: A/B, interleaving, off-policy."""


@experiment_group.command("simulate", epilog=example(
    "edgerec experiment simulate runs/demo/bundle --data runs/demo/data --users 200 --plot sim.png"))
@click.argument("bundle", type=BUNDLE)
@click.option("--policy", "policy", help="JSON Policy fields, e.g. '{\"diversity\": 0.3}'.")
@sim_options()
@click.option("--plot", "plot_out", type=PLOT_OUT, help="Plays per active user by day, with 95% bands.")
def simulate(bundle, policy, data_dir, sim, json_out, plot_out) -> None:
    """Serve one bundle to simulated users; online metrics per day and overall."""
    from edgerec.studies.experiments import SimulateStudy

    _run(SimulateStudy(bundle, data_dir, sim, _policy(policy)), json_out, plot_out)


@experiment_group.command("ab", epilog=example(
    "edgerec experiment ab runs/demo/bundle --policy-b '{\"diversity\": 0.5}' --data runs/demo/data"))
@two_arms
@click.option("--metric", default="plays", show_default=True,
              type=click.Choice(["plays", "finishes", "watch_s", "lists", "active", "likes"]))
@click.option("--report-epsilon", type=click.FloatRange(0, 20, min_open=True),
              help="Also test the figures the devices would report at this local epsilon (experiment analyze).")
@sim_options()
@click.option("--plot", "plot_out", type=PLOT_OUT)
def ab(control, treatment, policy_a, policy_b, metric, report_epsilon, data_dir, sim, json_out, plot_out) -> None:
    """A/B test: Welch, bootstrap CI, CUPED, mSPRT, power, and a ship / do not ship / inconclusive verdict."""
    from edgerec.studies.experiments import ABStudy

    a, b = _arms(control, treatment, policy_a, policy_b)
    _run(ABStudy(a, b, data_dir, sim, metric, report_epsilon=report_epsilon), json_out, plot_out)


@experiment_group.command("analyze", epilog=example(
    "edgerec experiment analyze reports.jsonl --experiment ranker-v2 --metric plays --json ab.json"))
@click.argument("reports", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--experiment", required=True, help="The experiment's name, as the devices reported it.")
@click.option("--metric", default="plays", show_default=True, help="The reported figure to test.")
@click.option("--control", default="control", show_default=True, help="The control arm's name.")
@click.option("--treatment", default="treatment", show_default=True, help="The treatment arm's name.")
@click.option("--interleaved", metavar="ARM", help="An interleaving experiment whose devices reported as ARM, "
              "with clicks_a and clicks_b (the plays credited to each team).")
@click.option("--json", "json_out", type=FILE_OUT)
def analyze(reports, experiment, metric, control, treatment, interleaved, json_out) -> None:
    """A real experiment: the devices' private reports (PrivateReporter.experiment, one JSON a line) in;
    Welch, bootstrap, CUPED on their pre-period figures, mSPRT, power and the verdict out."""
    from edgerec.studies.device_reports import ReportsStudy

    _run(ReportsStudy(reports, experiment, metric, (control, treatment), interleaved=interleaved), json_out)


@experiment_group.command("aa", epilog=example(
    "edgerec experiment aa runs/demo/bundle --data runs/demo/data --experiments 200"))
@click.argument("bundle", type=BUNDLE)
@click.option("--experiments", default=200, show_default=True, type=click.IntRange(min=1), help="A/A splits of the one simulated log.")
@click.option("--interleaving", is_flag=True,
              help="Interleave the bundle with itself and redraw the team coins instead of splitting users.")
@sim_options()
def aa(bundle, experiments, interleaving, data_dir, sim, json_out) -> None:
    """The test of the test: the false-positive rate of A/A splits (should be close to alpha)."""
    from edgerec.studies.experiments import AAStudy, InterleaveAAStudy

    study = InterleaveAAStudy if interleaving else AAStudy
    _run(study(bundle, data_dir, sim, experiments), json_out)


@experiment_group.command("interleave", epilog=example(
    "edgerec experiment interleave runs/demo/bundle runs/demo/bundle-fp32 --data runs/demo/data"))
@two_arms
@sim_options(pre_days=0)
def interleave(control, treatment, policy_a, policy_b, data_dir, sim, json_out) -> None:
    """Team-draft interleaving on the device. The credit test decides: a t-test of each user's clicks for B
    minus clicks for A, capped at the 90th percentile; the sign test over per-user wins is shown beside it,
    with the users each would need."""
    from edgerec.studies.experiments import InterleaveStudy

    a, b = _arms(control, treatment, policy_a, policy_b)
    _run(InterleaveStudy(a, b, data_dir, sim), json_out)


@experiment_group.command("ope", epilog=example(
    "edgerec experiment ope runs/demo/bundle --policy-b '{\"diversity\": 0.3}' --data runs/demo/data"))
@two_arms
@click.option("--temperature", default=2.0, show_default=True, help="Plackett-Luce temperature of exploration.")
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(min=1),
              help="Repeat under this many seeds (SEED, SEED + 1, ...); reports each estimator's mean relative "
                   "error, its s.d. and the share of seeds within 5% and closer than IPS.")
# 5,000 lists by default (1,000 users x 5 days; fewer users on a smaller data set): 300 lists, the old
# default, lay 10 to 50 times below the noise floor the command prints (docs/experiments.md)
@sim_options(days=5, pre_days=0, users=1000)
def ope(control, treatment, policy_a, policy_b, temperature, seeds, data_dir, sim, json_out) -> None:
    """Log with exploration under CONTROL; estimate TREATMENT's value by IPS, SNIPS and DR beside the truth."""
    from edgerec.studies.experiments import OPEStudy

    a, b = _arms(control, treatment, policy_a, policy_b)
    _run(OPEStudy(a, b, data_dir, sim, temperature, seeds=seeds), json_out)


@experiment_group.command("sensitivity", epilog=example(
    "edgerec experiment sensitivity runs/demo/bundle runs/demo/bundle-teacher --data runs/demo/data "
    "--visits-sigma 0.9"))
@two_arms
@click.option("--seeds", default=1, show_default=True, type=click.IntRange(min=1),
              help="Repeat on other users (SEED, SEED + 1, ...) and pool them into one more row.")
@sim_options()
def sensitivity(control, treatment, policy_a, policy_b, seeds, data_dir, sim, json_out) -> None:
    """Users an A/B test (with and without CUPED) and an interleaving need to detect the same effect.

    Their ratio (the gain) is given only where the paired A/B effect and the interleaving's test are both
    significant at alpha and agree in sign; otherwise it says why not ("not measurable", "opposite")."""
    from edgerec.studies.sensitivity import SensitivityStudy

    a, b = _arms(control, treatment, policy_a, policy_b)
    _run(SensitivityStudy(a, b, data_dir, sim, seeds=seeds), json_out)


def _named_arms(arms: tuple[str, ...], policies: tuple[str, ...]) -> list:
    """--arm NAME=BUNDLE (repeatable) and --policy NAME=JSON for any of them."""
    from edgerec.studies.simulator import Arm

    def split(text: str, what: str) -> tuple[str, str]:
        name, sep, value = text.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"{what} must look like NAME=VALUE (got {text!r})")
        return name, value

    chosen = dict(split(p, "--policy") for p in policies)
    out = []
    for text in arms:
        name, bundle = split(text, "--arm")
        if not Path(bundle).exists():
            raise ConfigError(f"--arm {name}: no bundle at {bundle}")
        out.append(Arm(name, Path(bundle), _policy(chosen.pop(name, None))))
    if chosen:
        raise ConfigError(f"--policy names arms that no --arm gives: {sorted(chosen)}")
    return out


@experiment_group.command("agreement", epilog=example(
    "edgerec experiment agreement --data runs/demo/data --arm student=runs/demo/bundle "
    "--arm teacher=runs/demo/bundle-teacher --arm popular=runs/demo/bundle "
    "--policy 'popular={\"cold_start_items\": 10000}' --plot agreement.png"))
@click.option("--arm", "arms", multiple=True, required=True, help="NAME=BUNDLE, at least three (repeatable).")
@click.option("--policy", "policies", multiple=True, help="NAME=JSON Policy fields for one arm (repeatable).")
@click.option("--offline-users", default=300, show_default=True, type=click.IntRange(min=1),
              help="Held-out users replayed for NDCG@10.")
@sim_options(days=5, pre_days=0)
@click.option("--plot", "plot_out", type=PLOT_OUT, help="Offline NDCG@10 against simulated plays per day.")
def agreement(arms, policies, offline_users, data_dir, sim, json_out, plot_out) -> None:
    """Offline NDCG@10 beside simulated online metrics for each arm, and their rank correlation."""
    from edgerec.studies.agreement import AgreementStudy

    _run(AgreementStudy(_named_arms(arms, policies), data_dir, sim, offline_users), json_out, plot_out)


def register(cli: click.Group) -> None:
    cli.add_command(experiment_group)
