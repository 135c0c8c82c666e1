"""The trainer's settings, built once from the environment."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sommelier_contract import layout


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True)

    dataset_bucket: str = Field(description="bucket holding <prefix>/data.csv, <prefix>/spec.json and <prefix>/feedback/")
    dataset_prefix: str = "datasets/wine"
    model_bucket: str
    model_signing_key: str = Field(description="the KMS key (asymmetric, ECDSA P-256) manifests are signed with")
    metrics_namespace: str = "Sommelier"
    holdout_fraction: float = Field(0.2, gt=0, lt=0.5)
    cv_folds: int = Field(5, ge=2, le=10)
    seed: int = 42
    accuracy_floor: float = Field(0.7, ge=0, le=1, description="a challenger below this holdout accuracy is never promoted")
    regression_tolerance: float = Field(0.02, ge=0, le=1, description="how much macro F1 a challenger may lose to the champion")
    feedback_max_share: float = Field(0.25, gt=0, le=1, description="feedback is at most this share of the rows (dataset + feedback)")
    cv_drop_tolerance: float = Field(0.1, ge=0, le=1, description="a CV macro F1 this far below the champion's (same dataset) "
                                                                  "leaves promotion to a person")
    families: str = Field("", description="comma-separated candidate names to compare; empty compares all that suit the data")
    selection_metric: Literal["f1_macro", "accuracy", "log_loss"] = Field(
        "f1_macro", description="what the candidates are compared on (macro F1 by default: every class counts, however rare)")
    train_budget_seconds: float = Field(600, gt=0, description="comparison stops starting candidates (and folds) after this")
    refit_budget_seconds: float = Field(120, gt=0, description="the winner's refit on every training row is predicted from its "
                                         "cross-validation fits; above this it is refit on the largest stratified sample predicted to fit")
    lambda_max_rows: int = Field(0, ge=0, description="the trainer function hands a dataset with more rows to the ECS task "
                                                      "(0: it trains everything itself)")
    task_cluster: str = Field("", description="the ECS cluster of the training task")
    task_definition: str = Field("", description="the training task's definition (empty: deployed without images)")
    task_subnets: str = Field("", description="comma-separated subnets the training task runs in")
    search_rows: int = Field(5_000, ge=100, description="where a candidate searches its regularisation, the candidates are "
                                                        "compared on up to this many rows (a stratified sample of more)")
    compare_rows: int = Field(20_000, ge=100, description="larger training sets are compared on a stratified sample this big")
    # The model canary: a challenger that passes the gate first serves this share of predictions; the
    # evaluator (`canary-evaluate`, scheduled) then promotes or rolls it back on live evidence. 0: promote at once.
    canary_percent: float = Field(0, ge=0, le=100)
    canary_min_requests: int = Field(30, ge=1, description="candidate requests needed before any decision")
    canary_max_error_rate_increase: float = Field(0.01, ge=0, le=1)
    canary_latency_factor: float = Field(1.5, ge=1, description="candidate p99 may be this times the champion's (+20 ms)")
    canary_max_low_confidence_increase: float = Field(0.10, ge=0, le=1)
    canary_min_feedback: int = Field(10, ge=1, description="feedback per model before accuracy counts")
    canary_max_accuracy_drop: float = Field(0.05, ge=0, le=1)

    @property
    def feedback_prefix(self) -> str:
        return layout.feedback_prefix(self.dataset_prefix)

    @property
    def quarantine_prefix(self) -> str:
        return layout.quarantine_prefix(self.dataset_prefix)
