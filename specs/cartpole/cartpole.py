"""A small, real simulator for simfleet's example fleet: the classic cart-pole.

Physics as in Barto, Sutton & Anderson (1983) and Gymnasium's CartPole-v1: a pole hinged
on a cart that a controller pushes left or right. The "agent" here is a noisy linear
policy, so episodes vary in length. Every episode prints one summary line; SIGTERM ends
the run with a final line and exit code 0. Standard library only: runs with no network.

Environment: SIMFLEET_SLOT (seeds the noise), SIM_MODE (printed), SIM_STEP_SECONDS
(wall time per physics step, default 0.01), SIM_EPISODES (0 = forever).
"""

from __future__ import annotations

import math
import os
import random
import signal
import sys
import time

GRAVITY, CART_MASS, POLE_MASS, POLE_HALF_LENGTH, FORCE, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
THETA_LIMIT, X_LIMIT, MAX_STEPS = 12 * 2 * math.pi / 360, 2.4, 500


def step(state: tuple[float, float, float, float], push_right: bool) -> tuple[float, ...]:
    """One Euler step of the cart-pole equations of motion."""
    x, x_dot, theta, theta_dot = state
    force = FORCE if push_right else -FORCE
    total_mass = CART_MASS + POLE_MASS
    cos, sin = math.cos(theta), math.sin(theta)
    temp = (force + POLE_MASS * POLE_HALF_LENGTH * theta_dot**2 * sin) / total_mass
    theta_acc = (GRAVITY * sin - cos * temp) / (
        POLE_HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * cos**2 / total_mass)
    )
    x_acc = temp - POLE_MASS * POLE_HALF_LENGTH * theta_acc * cos / total_mass
    return (
        x + TAU * x_dot,
        x_dot + TAU * x_acc,
        theta + TAU * theta_dot,
        theta_dot + TAU * theta_acc,
    )


def episode(rng: random.Random, step_seconds: float, stopping: list[bool]) -> int:
    """Run one episode with a noisy linear policy; return the steps the pole stayed up."""
    state = tuple(rng.uniform(-0.05, 0.05) for _ in range(4))
    for steps in range(1, MAX_STEPS + 1):
        if stopping[0]:
            return steps
        x, x_dot, theta, theta_dot = state
        score = 0.1 * x + 0.5 * x_dot + 10.0 * theta + 1.5 * theta_dot + rng.gauss(0, 2.0)
        state = step(state, score > 0)
        if abs(state[0]) > X_LIMIT or abs(state[2]) > THETA_LIMIT:
            return steps
        if step_seconds:
            time.sleep(step_seconds)
    return MAX_STEPS


def main() -> int:
    slot = int(os.environ.get("SIMFLEET_SLOT", "0"))
    mode = os.environ.get("SIM_MODE", "train")
    step_seconds = float(os.environ.get("SIM_STEP_SECONDS", "0.01"))
    limit = int(os.environ.get("SIM_EPISODES", "0"))
    rng = random.Random(slot)
    stopping = [False]  # set by SIGTERM; checked every physics step

    def stop(_signum: int, _frame: object) -> None:
        stopping[0] = True

    signal.signal(signal.SIGTERM, stop)
    print(f"cartpole simulator slot={slot} mode={mode} starting", flush=True)
    lengths: list[int] = []
    while not stopping[0] and (limit == 0 or len(lengths) < limit):
        started = time.monotonic()
        lengths.append(episode(rng, step_seconds, stopping))
        recent = lengths[-20:]
        print(
            f"episode={len(lengths)} steps={lengths[-1]} reward={lengths[-1]:.1f} "
            f"mean20={sum(recent) / len(recent):.1f} "
            f"seconds={time.monotonic() - started:.2f}",
            flush=True,
        )
    print(f"cartpole simulator slot={slot} done after {len(lengths)} episodes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
