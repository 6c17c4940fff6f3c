"""Ready-made retry, circuit-breaker and resilience policies (pyspark-pipeline-framework's presets).

Each preset is one shared, frozen instance: use it as it is, or build a new config from its values.
"""

from __future__ import annotations

from airflow_ppf.config.models import CircuitBreakerConfig, ResiliencePolicy, RetryConfig

__all__ = ["CircuitBreakerConfigs", "ResiliencePolicies", "RetryPolicies"]


class RetryPolicies:
    """Retry presets: ``NO_RETRY`` (one attempt), ``DEFAULT``, ``AGGRESSIVE``, ``CONSERVATIVE``."""

    NO_RETRY: RetryConfig = RetryConfig(max_attempts=1)
    DEFAULT: RetryConfig = RetryConfig()
    AGGRESSIVE: RetryConfig = RetryConfig(max_attempts=5, initial_delay_seconds=0.5, backoff_multiplier=1.5)
    CONSERVATIVE: RetryConfig = RetryConfig(max_attempts=2, initial_delay_seconds=5.0, max_delay_seconds=30.0)


class CircuitBreakerConfigs:
    """Circuit-breaker presets: ``DEFAULT``, ``SENSITIVE`` (trips sooner), ``RESILIENT`` (tolerates more)."""

    DEFAULT: CircuitBreakerConfig = CircuitBreakerConfig()
    SENSITIVE: CircuitBreakerConfig = CircuitBreakerConfig(failure_threshold=3, timeout_seconds=120.0)
    RESILIENT: CircuitBreakerConfig = CircuitBreakerConfig(failure_threshold=10, timeout_seconds=30.0)


class ResiliencePolicies:
    """Retry and circuit breaker bundled: ``NONE``, ``DEFAULT``, ``AGGRESSIVE``, ``CONSERVATIVE``,
    ``RETRY_ONLY``, ``CIRCUIT_BREAKER_ONLY``."""

    NONE: ResiliencePolicy = ResiliencePolicy()
    DEFAULT: ResiliencePolicy = ResiliencePolicy(
        retry=RetryPolicies.DEFAULT, circuit_breaker=CircuitBreakerConfigs.DEFAULT
    )
    AGGRESSIVE: ResiliencePolicy = ResiliencePolicy(
        retry=RetryPolicies.AGGRESSIVE, circuit_breaker=CircuitBreakerConfigs.SENSITIVE
    )
    CONSERVATIVE: ResiliencePolicy = ResiliencePolicy(
        retry=RetryPolicies.CONSERVATIVE, circuit_breaker=CircuitBreakerConfigs.RESILIENT
    )
    RETRY_ONLY: ResiliencePolicy = ResiliencePolicy(retry=RetryPolicies.DEFAULT)
    CIRCUIT_BREAKER_ONLY: ResiliencePolicy = ResiliencePolicy(circuit_breaker=CircuitBreakerConfigs.DEFAULT)
