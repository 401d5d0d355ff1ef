"""Typed experiment configuration: dataclasses loaded from YAML, validated once at start-up.

Every tunable of every node is a key here (ROS parameters carry only the config file and
`section.key=value` overrides), so one file describes a whole experiment and is saved with its run.
Unknown keys and keys that the chosen backend cannot honour stop start-up with a clear message:
a silently ignored hyperparameter is how a team loses a week.
"""
from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kuavo_rl.envs.registry import ENVS
from kuavo_rl.kuavo.settings import KuavoConfig, KuavoSimConfig, validate_kuavo


class ConfigError(ValueError):
    """A configuration that cannot run: unknown key, wrong type, or a key a backend cannot honour."""


@dataclass
class EnvConfig:
    name: str = "toy"  # one of kuavo_rl.envs.registry.ENVS: toy | pick_lift | kuavo_sim | kuavo
    action_dim: int = 14
    target: float = 0.0  # the toy task's target action value, same in every dimension
    obs_mode: str = "zero_obs"  # zero_obs | real_obs
    episode_steps: int = 200
    timing: str = "lockstep"  # lockstep (step when an action arrives) | realtime (own clock)
    rate_hz: float = 10.0  # realtime mode only; the seed ran at 10 Hz
    republish_period_s: float = 1.0  # resend the current observation when no action answers it for this long
    kuavo: KuavoConfig = field(default_factory=KuavoConfig)  # env kuavo / kuavo_sim: the bridge
    kuavo_sim: KuavoSimConfig = field(default_factory=KuavoSimConfig)  # env kuavo_sim: the simulated Kuavo


@dataclass
class RewardConfig:
    type: str = "mse"  # mse | shaped | env | weighted_terms
    shift: float = 0.0  # r = clip(scale * (base + shift))
    scale: float = 1.0
    clip: typing.Optional[list[float]] = None  # [low, high] after scaling; null = no clipping
    weights: dict[str, float] = field(default_factory=dict)  # weighted_terms: term name -> weight


@dataclass
class AlgoConfig:
    backend: str = "lerobot_sac"  # lerobot_sac | sb3_sac | sb3_ppo (in-process only)
    discount: float = 0.99
    temperature_init: float = 1.0
    target_entropy: typing.Optional[float] = None  # null = derived by the backend's rule
    grad_clip_norm: float = 40.0  # 0 = no clipping
    batch_size: int = 256
    lr: float = 3e-4  # shared default for the three learning rates below
    actor_lr: typing.Optional[float] = None
    critic_lr: typing.Optional[float] = None
    temperature_lr: typing.Optional[float] = None
    utd_ratio: int = 1  # gradient updates per environment step (measured and reported)
    num_critics: int = 2
    tau: float = 0.005
    use_backup_entropy: bool = True
    online_buffer_capacity: int = 100_000
    offline_buffer_capacity: int = 100_000
    offline_ratio: float = 0.5  # RLPD: share of each batch drawn from the offline buffer once it has data
    learning_starts: int = 1000  # env steps with random actions before the first update
    hidden_dims: list[int] = field(default_factory=lambda: [256, 256])
    torch_compile: bool = False  # lerobot 0.4 compiles its critics; 0.6 stopped because SAC did not converge
    # statistics (mean/std) | min_max (min/max to [-1, 1]) of the demonstrations at start-up, or without
    # demonstrations of the buffers at the first update, then frozen | bounds (the env's finite
    # observation bounds to [-1, 1]) | none. Travels with the weights: the actor applies the same.
    observation_normalization: str = "statistics"
    observation_clip: float = 10.0  # normalised observations are clipped to +-this
    # Warm start from demonstrations (the offline buffer): behaviour-cloning updates of the actor
    # before online learning, and a BC term in the actor loss on the batch's offline samples only,
    # weighted bc_weight_start decaying linearly to bc_weight_end over bc_decay_updates updates.
    bc_pretrain_updates: int = 0
    bc_pretrain_critic: bool = False  # lerobot_sac: also fit the critics to the offline data while cloning
    bc_weight_start: float = 0.0
    bc_weight_end: float = 0.0
    bc_decay_updates: int = 100_000
    ppo_n_steps: int = 2048
    ppo_n_epochs: int = 10
    ppo_gae_lambda: float = 0.95
    ppo_clip_range: float = 0.2

    def part_lr(self, part: str) -> float:
        value = getattr(self, f"{part}_lr")
        return self.lr if value is None else value


@dataclass
class LearnerConfig:
    publish_weights_every_updates: int = 50
    checkpoint_every_updates: int = 500
    checkpoint_period_s: float = 5.0  # also checkpoint this often while received data is not yet persisted
    resume: bool = True  # continue from <run.run_dir>/checkpoints/latest.pt when it exists
    status_period_s: float = 1.0  # publish the learner's status (the actors' heartbeat from the learner) this often
    actor_timeout_s: float = 5.0  # no status from an actor for this long: its link is lost (logged, in the status)
    # Two machines (kuavo-rl train --side learner, learner.launch.py set it): end, with a checkpoint, once
    # every actor that fed this learner has said it finished (all its batches received).
    stop_when_actors_finish: bool = False
    # Torch threads of the learner (and of the in-process trainer): 0 = auto, the cores left after one each
    # for the env and the actor (1 on a 2- or 3-core machine). More threads than free cores stall updates.
    torch_threads: int = 0
    # Where the learner's networks and sampled batches live: auto (the first CUDA device if torch sees one,
    # else cpu) | cpu | cuda | cuda:N. Buffers stay in host memory; weights are published from CPU copies;
    # the actor always acts on the CPU.
    device: str = "auto"
    # Bounded inputs: a larger batch is refused (one batch must not flush the online buffer), and
    # so is any observation, action or reward term beyond this magnitude (it would blow up the critic).
    max_batch_transitions: int = 10_000
    max_abs_value: float = 1e6


@dataclass
class ActorConfig:
    batch_transitions: int = 50  # transitions per TransitionBatch message
    intervention_timeout_s: float = 0.5  # an intervention older than this is ignored
    eval_every_episodes: int = 4  # every k-th episode runs the deterministic policy, not trained on
    final_eval_episodes: int = 2
    sync_with_learner: bool = True  # lockstep only: pause when the learner falls behind (reproducible UTD)
    actor_id: str = "actor0"  # names this actor's batches to the learner; unique per actor
    torch_threads: int = 1  # one step's forward pass is too small to gain from more; they only burn CPU
    resend_after_s: float = 2.0  # resend a batch the learner has not acknowledged as received after this long
    status_period_s: float = 1.0  # publish the actor's status (the learner's heartbeat from this actor) this often
    learner_timeout_s: float = 5.0  # no status from the learner for this long: the link is lost
    # While the learner link is lost: act (keep acting with the current policy; every batch is kept
    # until the learner has persisted it) | hold (answer no observation until the learner is back).
    on_learner_lost: str = "act"
    # Weights more than this many versions ahead of the current ones are refused (a learner publishes
    # one version per learner.publish_weights_every_updates): a bogus huge version would freeze the policy.
    max_weights_version_jump: int = 1000


@dataclass
class RunConfig:
    total_env_steps: int = 6000
    seed: int = 0
    run_dir: str = "runs/default"  # logs, checkpoints, plots (the CLI sets runs/<time>-<backend>-dim<N>)
    progress_line: bool = True  # a periodic status line (env steps, rate, ETA) on stderr
    # The run key that signs every message between the nodes ("" = <run_dir>/run.key, created at
    # start). A node on a second machine of the same run needs a copy of this file.
    key_file: str = ""


@dataclass
class VrConfig:
    """The VR teleop node (kuavo_vr_teleop): input source, bindings, safety limits."""
    source: str = "openxr"  # openxr (a headset through an OpenXR runtime) | replay (a recording) | none
    replay_file: str = ""  # recorded controller stream (JSON lines) for source replay
    replay_loop: bool = False  # restart the replay at its end
    record_file: str = ""  # record every controller frame to this JSON-lines file
    mapping: typing.Optional[str] = None  # controller -> action mapping; null = the env's (envs/registry.py)
    rate_hz: float = 50.0  # publish rate; the source is polled at this rate
    stale_timeout_s: float = 0.3  # release the takeover when no new controller frame arrives for this long
    retry_period_s: float = 5.0  # retry opening an unavailable source (e.g. no OpenXR runtime) this often
    deadman: str = "right.squeeze"  # deadman/clutch input '<hand>.<input>' held above 0.5
    estop_chord: str = "left.x+left.y"  # inputs pressed together that latch the e-stop
    reset_chord: str = "right.a+right.b"  # inputs held together for reset_hold_s to clear the e-stop
    reset_hold_s: float = 1.0
    # Episode labels: pressed and released alone, the button ends the episode as a success / failure
    # ("" = no button). Y and X as the Kuavo team's Quest set-up; X+Y together stays the e-stop.
    success_button: str = "left.y"
    failure_button: str = "left.x"
    max_delta_per_step: float = 0.0  # max change of each action value per update; 0 = 10% of its range
    workspace_half_extent_m: float = 0.5  # controller displacement from the engage pose is clamped to +-this
    metres_per_unit: float = 0.0  # controller metres per action unit (toy, ee_delta); 0 = the mapping's default
    openxr_pose: str = "grip"  # which controller pose to track: grip | aim
    # When the runtime binds the Khronos simple controller profile (select, menu, poses; no grip, no X/Y/A/B):
    # the deadman ("" = takeover refused with it; e.g. right.trigger, the select button, which some mappings
    # also read as the gripper trigger), the e-stop and its reset. No episode labels with that profile.
    simple_controller_deadman: str = ""
    simple_controller_estop_chord: str = "left.menu"
    simple_controller_reset_chord: str = "right.menu"


@dataclass
class DemosConfig:
    """Demonstrations: recorded LeRobotDatasets that fill the offline buffer at start-up."""
    datasets: list[str] = field(default_factory=list)  # local dataset roots (kuavo-rl record --out ...)
    max_episodes: int = 0  # per dataset, the first N episodes; 0 = all
    # What of training is written as a LeRobotDataset at <run_dir>/datasets/takeovers (or /episodes) when the
    # learner stops: takeovers (each contiguous human takeover) | episodes (every training episode) | none
    record_training: str = "takeovers"


@dataclass
class QuirksConfig:
    """Behaviours of other training set-ups, imitated on purpose to find out what they do to learning.
    All off (the default) is the correct behaviour; each switch is named for what it imitates."""
    # The time limit ends an episode as terminal, so the critic does not bootstrap there (an env that
    # reports its time limit as `terminated`, as the Kuavo team's did, or gym's old single `done`).
    time_limit_as_terminal: bool = False
    # The last transition of an episode gets the next episode's first observation as its next observation
    # (lerobot 0.4's memory-optimised buffer takes next_state from the following stored state).
    bootstrap_across_episodes: bool = False
    # The temperature optimiser uses the critic's learning rate, whatever algo.temperature_lr says
    # (lerobot 0.4 builds it with critic_lr).
    temperature_lr_from_critic: bool = False

    def active(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name)]


@dataclass
class ExperimentConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    actor: ActorConfig = field(default_factory=ActorConfig)
    run: RunConfig = field(default_factory=RunConfig)
    vr: VrConfig = field(default_factory=VrConfig)
    demos: DemosConfig = field(default_factory=DemosConfig)
    quirks: QuirksConfig = field(default_factory=QuirksConfig)
    # Keys the user set explicitly ("algo.grad_clip_norm", ...): a backend that cannot honour an
    # explicitly set key refuses it, while defaults are simply the backend's own.
    explicit: set[str] = field(default_factory=set, repr=False, compare=False)

    @property
    def vr_mapping(self) -> str:
        """The VR mapping to use: vr.mapping, else the one that produces this env's actions."""
        return self.vr.mapping or ENVS[self.env.name].vr_mapping

    def learner_algo(self) -> AlgoConfig:
        """The algorithm settings the learner builds its backend from: `algo` with the quirks that change
        it applied (quirks.temperature_lr_from_critic)."""
        if self.quirks.temperature_lr_from_critic:
            return dataclasses.replace(self.algo, temperature_lr=self.algo.part_lr("critic"))
        return self.algo

    def quirks_summary(self) -> str:
        """'' when every quirk is off, else a line for the start-up log."""
        active = self.quirks.active()
        if not active:
            return ""
        text = f"Quirks on (imitated on purpose, not the correct behaviour): {', '.join(active)}"
        if self.quirks.temperature_lr_from_critic:
            text += (f"; the temperature learns at the critic's rate {self.algo.part_lr('critic'):g} "
                     f"(algo.temperature_lr {self.algo.part_lr('temperature'):g} is not used)")
        return text

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("explicit")
        return d


SECTIONS = {f.name: f.type for f in dataclasses.fields(ExperimentConfig) if f.name != "explicit"}
PPO_ONLY = {"ppo_n_steps", "ppo_n_epochs", "ppo_gae_lambda", "ppo_clip_range"}
SAC_ONLY = {"temperature_init", "target_entropy", "utd_ratio", "num_critics", "tau", "use_backup_entropy",
            "online_buffer_capacity", "offline_buffer_capacity", "offline_ratio", "learning_starts",
            "actor_lr", "critic_lr", "temperature_lr", "torch_compile", "observation_normalization",
            "observation_clip", "bc_pretrain_updates", "bc_pretrain_critic", "bc_weight_start", "bc_weight_end", "bc_decay_updates"}
NORMALIZATION_MODES = ("statistics", "min_max", "bounds", "none")
VR_SOURCES = ("openxr", "replay", "none")
PIPELINE_BACKENDS = ("lerobot_sac", "sb3_sac")
ALL_BACKENDS = PIPELINE_BACKENDS + ("sb3_ppo",)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check and convert one YAML value to its declared type ("1e-3" strings count as floats)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union:
        if value is None:
            return None
        inner = [a for a in typing.get_args(annotation) if a is not type(None)][0]
        return _coerce(value, inner, where)
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (inner,) = typing.get_args(annotation)
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        _, inner = typing.get_args(annotation)
        return {str(k): _coerce(v, inner, f"{where}.{k}") for k, v in value.items()}
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{where}: must be finite, got {value!r}")
        return number
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {annotation} at {where}")


def _apply(cfg: ExperimentConfig, data: dict[str, Any], source: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections {sorted(SECTIONS)}")
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown section '{section}' (known: {', '.join(sorted(SECTIONS))})")
        _apply_fields(cfg, getattr(cfg, section), values, section, source)


def _apply_fields(cfg: ExperimentConfig, target: Any, values: Any, path: str, source: str) -> None:
    """Set the keys of one section (or nested section, e.g. env.kuavo) and record them as explicit."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: section '{path}' must be a mapping")
    hints = typing.get_type_hints(type(target))
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(f"{source}: unknown key '{path}.{key}' (known in '{path}': {', '.join(sorted(hints))})")
        if dataclasses.is_dataclass(hints[key]):
            _apply_fields(cfg, getattr(target, key), value, f"{path}.{key}", source)
            continue
        setattr(target, key, _coerce(value, hints[key], f"{source}: {path}.{key}"))
        cfg.explicit.add(f"{path}.{key}")


def parse_override(text: str) -> dict[str, Any]:
    """'algo.lr=1e-3' -> {'algo': {'lr': 1e-3}}; 'env.kuavo.ee_step_m=0.02' nests one level more
    (the value is parsed as YAML)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override '{text}': expected section.key=value, e.g. algo.lr=1e-3")
    path, raw = text.split("=", 1)
    data: Any = yaml.safe_load(raw)
    for part in reversed(path.strip().split(".")):
        data = {part: data}
    return data


def load_config(path: str | Path | None = None, overrides: typing.Iterable[str] = (),
                pipeline: bool = False) -> ExperimentConfig:
    """Load a YAML experiment file plus `section.key=value` overrides, and validate it."""
    cfg = ExperimentConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        _apply(cfg, yaml.safe_load(path.read_text()) or {}, str(path))
    for text in overrides:
        _apply(cfg, parse_override(text), f"override '{text}'")
    validate(cfg, pipeline=pipeline)
    return cfg


def config_from_dict(data: dict[str, Any], pipeline: bool = False, saved: bool = False) -> ExperimentConfig:
    """`saved`: a complete configuration as a run saved it (every key present): no key counts as set
    explicitly, so each backend's defaults of the other backends' keys are not refused."""
    cfg = ExperimentConfig()
    _apply(cfg, data, "config")
    if saved:
        cfg.explicit.clear()
    validate(cfg, pipeline=pipeline)
    return cfg


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _positive(cfg: ExperimentConfig, *keys: str) -> None:
    for key in keys:
        section, name = key.split(".")
        _require(getattr(getattr(cfg, section), name) > 0, f"{key} must be > 0")


def validate(cfg: ExperimentConfig, pipeline: bool = False) -> None:
    env, reward, algo = cfg.env, cfg.reward, cfg.algo
    _require(env.name in ENVS, f"env.name must be one of {', '.join(ENVS)}, got '{env.name}'")
    _require(env.action_dim >= 1, "env.action_dim must be >= 1")
    if env.name in ("kuavo", "kuavo_sim"):
        validate_kuavo(env.kuavo, env.kuavo_sim, _require)
        _require(env.timing == "lockstep", "env.timing must be lockstep for the Kuavo: the bridge is paced by the "
                 "robot's own clock (for the simulated Kuavo, choose env.kuavo_sim.timing)")
    if env.name != "toy":
        from kuavo_rl.envs import env_spec  # the env table is below this module; the env classes are not
        fixed = env_spec(env).action_dim
        _require(env.action_dim == fixed, f"env {env.name} has a {fixed}-dim action; set env.action_dim: {fixed}")
    _require(env.obs_mode in ("zero_obs", "real_obs"), f"env.obs_mode must be zero_obs or real_obs, got '{env.obs_mode}'")
    _require(env.timing in ("lockstep", "realtime"), f"env.timing must be lockstep or realtime, got '{env.timing}'")
    _require(env.episode_steps >= 1 and env.rate_hz > 0, "env.episode_steps and env.rate_hz must be positive")
    _positive(cfg, "env.republish_period_s", "learner.checkpoint_period_s", "learner.status_period_s",
              "actor.resend_after_s", "actor.intervention_timeout_s", "actor.status_period_s",
              "actor.learner_timeout_s", "learner.actor_timeout_s", "vr.rate_hz", "vr.stale_timeout_s",
              "vr.retry_period_s", "vr.reset_hold_s", "vr.workspace_half_extent_m")
    _require(bool(cfg.actor.actor_id.strip()), "actor.actor_id must not be empty")
    _require(cfg.actor.on_learner_lost in ("act", "hold"),
             f"actor.on_learner_lost must be act or hold, got '{cfg.actor.on_learner_lost}'")
    _require(cfg.learner.torch_threads >= 0, "learner.torch_threads must be >= 0 (0 = auto)")
    _require(cfg.actor.torch_threads >= 1, "actor.torch_threads must be >= 1")
    _require(re.fullmatch(r"auto|cpu|cuda(:\d+)?", cfg.learner.device) is not None,
             f"learner.device must be auto, cpu, cuda or cuda:N, got '{cfg.learner.device}'")
    vr = cfg.vr
    _require(vr.source in VR_SOURCES, f"vr.source must be one of {', '.join(VR_SOURCES)}, got '{vr.source}'")
    _require(vr.source != "replay" or bool(vr.replay_file), "vr.source replay needs vr.replay_file")
    _require(vr.openxr_pose in ("grip", "aim"), f"vr.openxr_pose must be grip or aim, got '{vr.openxr_pose}'")
    _require(vr.max_delta_per_step >= 0 and vr.metres_per_unit >= 0,
             "vr.max_delta_per_step and vr.metres_per_unit must be >= 0 (0 = the default)")
    _require(reward.type in ("mse", "shaped", "env", "weighted_terms"),
             f"reward.type must be mse, shaped, env or weighted_terms, got '{reward.type}'")
    _require(reward.clip is None or (len(reward.clip) == 2 and reward.clip[0] < reward.clip[1]),
             "reward.clip must be null or [low, high] with low < high")
    _require(reward.type != "weighted_terms" or bool(reward.weights), "reward.type weighted_terms needs reward.weights")
    _require(reward.type == "weighted_terms" or not reward.weights, "reward.weights is only used by reward.type weighted_terms")
    _require(algo.backend in ALL_BACKENDS, f"algo.backend must be one of {', '.join(ALL_BACKENDS)}, got '{algo.backend}'")
    if pipeline:
        _require(algo.backend in PIPELINE_BACKENDS,
                 f"algo.backend '{algo.backend}' is on-policy and runs only in the in-process diagnostics; "
                 f"the pipeline learner supports {', '.join(PIPELINE_BACKENDS)}")
    for name in ("discount", "tau", "offline_ratio"):
        value = getattr(algo, name)
        _require(0.0 <= value <= 1.0, f"algo.{name} must be in [0, 1], got {value}")
    _require(algo.temperature_init > 0, "algo.temperature_init must be > 0")
    _require(algo.grad_clip_norm >= 0, "algo.grad_clip_norm must be >= 0 (0 = no clipping)")
    for name in ("batch_size", "utd_ratio", "num_critics", "online_buffer_capacity", "offline_buffer_capacity"):
        _require(getattr(algo, name) >= 1, f"algo.{name} must be >= 1")
    _require(algo.learning_starts >= 0, "algo.learning_starts must be >= 0")
    _require(algo.observation_normalization in NORMALIZATION_MODES,
             f"algo.observation_normalization must be one of {', '.join(NORMALIZATION_MODES)}, "
             f"got '{algo.observation_normalization}'")
    _require(algo.observation_clip > 0, "algo.observation_clip must be > 0")
    if algo.observation_normalization == "bounds":
        from kuavo_rl.envs import observation_bounds
        _require(observation_bounds(env) is not None,
                 f"algo.observation_normalization: bounds needs finite observation bounds; env {env.name} has none "
                 f"(use statistics)")
    for part in ("actor", "critic", "temperature"):
        _require(algo.part_lr(part) > 0, f"algo.{part}_lr must be > 0")
    _validate_warm_start(cfg)
    _require(cfg.run.total_env_steps >= 1, "run.total_env_steps must be >= 1")
    _require(cfg.actor.batch_transitions >= 1, "actor.batch_transitions must be >= 1")
    _require(cfg.actor.batch_transitions <= cfg.learner.max_batch_transitions,
             f"actor.batch_transitions ({cfg.actor.batch_transitions}) must be <= learner.max_batch_transitions "
             f"({cfg.learner.max_batch_transitions}), or the learner refuses every batch")
    _require(cfg.learner.max_abs_value > 0 and cfg.actor.max_weights_version_jump >= 1,
             "learner.max_abs_value must be > 0 and actor.max_weights_version_jump >= 1")
    _check_backend_can_honour(cfg)


def _validate_warm_start(cfg: ExperimentConfig) -> None:
    algo, demos = cfg.algo, cfg.demos
    _require(demos.max_episodes >= 0, "demos.max_episodes must be >= 0 (0 = all)")
    _require(demos.record_training in ("takeovers", "episodes", "none"),
             f"demos.record_training must be takeovers, episodes or none, got '{demos.record_training}'")
    _require(all(isinstance(d, str) and d.strip() for d in demos.datasets), "demos.datasets: empty dataset path")
    _require(algo.bc_pretrain_updates >= 0 and algo.bc_decay_updates >= 1,
             "algo.bc_pretrain_updates must be >= 0 and algo.bc_decay_updates >= 1")
    _require(algo.bc_weight_start >= 0 and algo.bc_weight_end >= 0, "algo.bc_weight_start/end must be >= 0")
    _require(algo.bc_pretrain_updates == 0 or bool(demos.datasets),
             "algo.bc_pretrain_updates needs demonstrations to clone: set demos.datasets")
    _require(algo.backend != "sb3_ppo" or not demos.datasets,
             "demos.datasets: sb3_ppo is on-policy and has no offline buffer; use lerobot_sac or sb3_sac")


def _explicit_algo_keys(cfg: ExperimentConfig) -> set[str]:
    return {k.split(".", 1)[1] for k in cfg.explicit if k.startswith("algo.")}


def _check_backend_can_honour(cfg: ExperimentConfig) -> None:
    algo, explicit = cfg.algo, _explicit_algo_keys(cfg)
    backend = algo.backend

    def refuse(key: str, why: str) -> None:
        raise ConfigError(f"backend {backend} cannot honour algo.{key}: {why}")

    if backend != "sb3_ppo":
        for key in sorted(explicit & PPO_ONLY):
            refuse(key, "it is a PPO setting; use algo.backend: sb3_ppo")
    if backend == "sb3_sac":
        if "grad_clip_norm" in explicit and algo.grad_clip_norm > 0:
            refuse("grad_clip_norm", "stable-baselines3 SAC has no gradient clipping (set it to 0 or use lerobot_sac)")
        rates = {part: algo.part_lr(part) for part in ("actor", "critic", "temperature")}
        if len(set(rates.values())) > 1:
            key = next(f"{p}_lr" for p in rates if f"{p}_lr" in explicit)
            refuse(key, f"stable-baselines3 SAC uses one learning rate for actor, critic and temperature; got {rates}")
        if not algo.use_backup_entropy:
            refuse("use_backup_entropy", "stable-baselines3 SAC always includes the entropy term in the critic target")
        if algo.torch_compile:
            refuse("torch_compile", "only lerobot_sac compiles its critics")
        if algo.bc_pretrain_critic:
            refuse("bc_pretrain_critic", "stable-baselines3 SAC's update cannot train the critics alone (use lerobot_sac)")
        for key in ("bc_weight_start", "bc_weight_end"):
            if getattr(algo, key) > 0:
                refuse(key, "stable-baselines3 SAC's update has no extra actor loss term (use lerobot_sac; "
                            "algo.bc_pretrain_updates works with both)")
    if backend == "sb3_ppo":
        for key in sorted(explicit & SAC_ONLY):
            refuse(key, "PPO is on-policy and has no such setting")
    _check_backend_can_honour_quirks(cfg)


def _check_backend_can_honour_quirks(cfg: ExperimentConfig) -> None:
    quirks, backend = cfg.quirks, cfg.algo.backend

    def refuse(key: str, why: str) -> None:
        raise ConfigError(f"backend {backend} cannot honour quirks.{key}: {why}")

    if backend == "sb3_ppo":
        if quirks.bootstrap_across_episodes:
            refuse("bootstrap_across_episodes", "PPO learns from its own rollouts, not from a replay buffer")
        if quirks.temperature_lr_from_critic:
            refuse("temperature_lr_from_critic", "PPO has no temperature")
    if backend == "sb3_sac" and quirks.temperature_lr_from_critic:
        refuse("temperature_lr_from_critic", "stable-baselines3 SAC already uses its one learning rate for the "
                                             "temperature, so the switch would change nothing (use lerobot_sac)")
