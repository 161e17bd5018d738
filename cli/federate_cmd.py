"""`edgerec federate`: the federated-learning simulation (studies/federated.py), printed and saved."""

from __future__ import annotations

from pathlib import Path

import click

from edgerec.cli.output import FILE_OUT, PLOT_OUT, SEED, example

DIR = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command("federate", epilog=example(
    "edgerec federate --data data/world --out runs/federated --rounds 20 --clients 100",
    "edgerec federate --data data/world --out runs/fed-dp --epsilon 4 --no-central"))
@click.option("--data", "data_dir", required=True, type=DIR, help="A data folder (synthetic or imported).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the early data, bundle v1, the upper bound and the new bundles.")
@click.option("--rounds", default=20, show_default=True)
@click.option("--clients", default=100, show_default=True, help="Devices per round (expected; Poisson sampling).")
@click.option("--devices", default=400, show_default=True, type=click.IntRange(min=1), help="At most this many simulated devices.")
@click.option("--train-minutes", default=10.0, show_default=True,
              help="Time cap of each of the two trainings (v1, the upper bound); their budget follows the data.")
@click.option("--early-share", default=0.7, show_default=True, help="Share of events (by time) that trains v1.")
@click.option("--epsilon", "epsilons", type=float, multiple=True, default=(1.0, 4.0, 8.0), show_default=True,
              help="DP-FedAvg arms (user-level epsilon over all rounds; repeat the option).")
@click.option("--delta", default=1e-6, show_default=True)
@click.option("--clip", default=0.2, show_default=True, help="L2 bound of one device's update.")
@click.option("--server-lr", default=10.0, show_default=True,
              help="FedAvg's first step size; each round then tries half, the same and twice it on an evaluation "
                   "cohort of devices and keeps the best (DP arms keep it fixed).")
@click.option("--fixed-server-lr", is_flag=True, help="No step search: FedAvg keeps --server-lr in every round.")
@click.option("--local-steps", default=2, show_default=True, help="Gradient steps a device takes on its rows.")
@click.option("--local-lr", default=0.002, show_default=True,
              help="A device's step size (its loss is summed over its examples).")
@click.option("--encoding", type=click.Choice(["int8", "fp16"]), default="int8", show_default=True,
              help="How devices encode the rows they upload.")
@click.option("--no-central", is_flag=True, help="Skip the centralized retraining upper bound.")
@click.option("--no-table-bound", is_flag=True,
              help="Skip the arm that trains the item table alone centrally (what the loop could reach).")
@click.option("--no-personal-arm", is_flag=True,
              help="Skip the arm where only personal vectors move (FedAvg still reports them): one arm fewer.")
@click.option("--no-personal", is_flag=True,
              help="Devices train the table's rows without their personal vectors (as an app serving "
                   "without them); the personal-only arm still learns them.")
@click.option("--reuse", is_flag=True,
              help="Take v1 and the upper bound from --out when an earlier run on the same data left them.")
@click.option("--dp-population-scale", default=1, show_default=True,
              help="DP arms: every device stands for this many users with its history (a projection of "
                   "DP-FedAvg on a population that many times larger, same sampling rate).")
@click.option("--seed", default=0, show_default=True, type=SEED)
@click.option("--seeded-noise", is_flag=True,
              help="DP arms draw their noise and device samples from --seed, so their figures repeat (a simulation "
                   "only: whoever knows the seed can remove the noise, so no DP bundle is published). Without it "
                   "the noise comes from the OS's entropy.")
@click.option("--json", "json_out", type=FILE_OUT, help="Where the record goes.  [default: OUT/federated.json]")
@click.option("--plot", "plot_out", type=PLOT_OUT, help="Where the plot goes.  [default: OUT/federated.png]")
def federate(data_dir, out, rounds, clients, devices, train_minutes, early_share, epsilons, delta, clip, server_lr,
             fixed_server_lr, local_steps, local_lr, encoding, no_central, no_table_bound, no_personal_arm, no_personal, reuse,
             dp_population_scale, seed, seeded_noise, json_out, plot_out) -> None:
    """Simulate federated rounds over a time split: v1, FedAvg, DP-FedAvg, personal vectors, upper bound."""
    from edgerec.cli.study_cmd import _run
    from edgerec.federated.server import ServerConfig
    from edgerec.models.train import TrainConfig
    from edgerec.runtime.federated import RoundTask
    from edgerec.studies.fed_world import WorldConfig
    from edgerec.studies.federated import FederatedStudy

    task = RoundTask(round=0, space="", lr=local_lr, steps=local_steps, clip=clip, encoding=encoding).check()
    study = FederatedStudy(
        data_dir, out, WorldConfig(early_share=early_share, max_devices=devices, seed=seed,
                              train=TrainConfig(eval_users=500, max_minutes=train_minutes, seed=seed)),
        ServerConfig(rounds=rounds, clients_per_round=clients, server_lr=server_lr, seed=seed, seeded_noise=seeded_noise,
                     step_search=() if fixed_server_lr else ServerConfig.step_search), task,
        tuple(epsilons), delta,
        central=not no_central, table_bound=not no_table_bound, personal_arm=not no_personal_arm,
        personal=not no_personal, reuse=reuse, dp_population_scale=dp_population_scale)
    _run(study, json_out or Path(out) / "federated.json", plot_out or Path(out) / "federated.png")


def register(cli: click.Group) -> None:
    cli.add_command(federate)
