"""``edgeloop demo``: the main job, end to end, on the embedded defaults.

Stages: train a real model on scikit-learn's bundled digits with its loss curve tracked →
register it → alias it ``production`` → load it back by alias and check it.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import typer

import edgeloop.client as el
from edgeloop.cli._render import console, table

EXPERIMENT = "digits"
MODEL = "digits"


def _train_digits(epochs: int) -> tuple[str, float]:
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, f1_score, log_loss
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=0, stratify=digits.target
    )
    params = {"model": "mlp", "hidden": 32, "lr": 0.01, "epochs": epochs, "seed": 0}
    model = MLPClassifier(
        hidden_layer_sizes=(params["hidden"],), learning_rate_init=params["lr"], random_state=0
    )
    classes = np.unique(y_train)
    with el.start_run(
        experiment=EXPERIMENT, name="mlp-32", params=params, inputs=["sklearn:digits"]
    ) as run:
        el.set_tag("stage", "demo")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for epoch in range(epochs):
                model.partial_fit(x_train, y_train, classes=classes)
                proba = model.predict_proba(x_test)
                el.log_metrics(
                    {
                        "train_loss": float(model.loss_),
                        "val_loss": float(log_loss(y_test, proba)),
                        "val_accuracy": float(accuracy_score(y_test, proba.argmax(1))),
                    },
                    step=epoch,
                )
        predicted = model.predict(x_test)
        accuracy = float(accuracy_score(y_test, predicted))
        el.log_metrics(
            {"accuracy": accuracy, "f1_macro": float(f1_score(y_test, predicted, average="macro"))}
        )
        el.log_model(model, "model", input_example=x_test[:5])
    return run.id, accuracy


def demo(epochs: int = typer.Option(30, help="Training epochs for the digits MLP.")) -> None:
    """Run the main job end to end on the local workspace (EDGELOOP_HOME, default .edgeloop)."""
    started = time.perf_counter()
    backend = el.get_backend()
    console.rule("[bold]1. train and track[/]")
    run_id, accuracy = _train_digits(epochs)
    console.print(f"run {run_id}: {epochs} epochs, test accuracy {accuracy:.3f}")

    console.rule("[bold]2. register and alias[/]")
    version = backend.create_model_version(
        MODEL, run_id=run_id, path="model", description="digits MLP from edgeloop demo"
    )
    backend.set_alias(MODEL, "production", version.version, reason="demo: best digits model")
    console.print(f"registered {version.uri}; models:/{MODEL}@production → {version.version}")

    console.rule("[bold]3. load by alias and check[/]")
    from sklearn.datasets import load_digits

    digits = load_digits()
    predictor = el.load_model(f"models:/{MODEL}@production")
    x = (digits.data / 16.0).astype(np.float32)
    agreement = float((predictor.predict(x) == digits.target).mean())
    table(
        "summary",
        ["what", "value"],
        [
            ("run", run_id),
            ("model", f"models:/{MODEL}@production (version {version.version})"),
            ("test accuracy", f"{accuracy:.4f}"),
            ("accuracy on all digits (loaded by alias)", f"{agreement:.4f}"),
            ("time", f"{time.perf_counter() - started:.1f} s"),
        ],
    )
    console.print(
        "Look at it: [bold]edgeloop runs list -e digits[/], [bold]edgeloop models show digits[/],"
        " or start the API with [bold]edgeloop server[/] and open http://127.0.0.1:8080/docs"
    )
