"""The trainer's settings, built once from the environment."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True)

    dataset_bucket: str = Field(description="bucket holding <prefix>/data.csv and <prefix>/spec.json")
    dataset_prefix: str = "datasets/wine"
    model_bucket: str
    metrics_namespace: str = "Sommelier"
    holdout_fraction: float = Field(0.2, gt=0, lt=0.5)
    seed: int = 42
