"""Building components from ``class_path``: every failure names the component and says what to fix."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_ppf.components import (
    Component,
    ComponentLoadError,
    DataFlow,
    SparkSessionNotAvailableError,
    create_component,
    load_component_class,
)
from airflow_ppf.config import ComponentConfig
from tests.helpers import components as helpers
from tests.helpers.components import MODULE


def make(class_name: str, name: str = "step", **config: Any) -> ComponentConfig:
    return ComponentConfig(name=name, class_path=f"{MODULE}.{class_name}", config=config)


# --------------------------------------------------------------------------------------------------
# load_component_class
# --------------------------------------------------------------------------------------------------


def test_loads_a_component_class() -> None:
    assert load_component_class(f"{MODULE}.Step") is helpers.Step
    assert load_component_class(f" {MODULE}.SparkStep ") is helpers.SparkStep


def test_missing_module_names_the_module_and_the_class_path() -> None:
    with pytest.raises(
        ComponentLoadError,
        match=r"cannot import module 'tests\.helpers\.nope' for class_path 'tests\.helpers\.nope\.Step': "
        r"no module named 'tests\.helpers\.nope' \(is the package installed and on PYTHONPATH\?\)",
    ):
        load_component_class("tests.helpers.nope.Step")


def test_missing_top_level_package_is_named() -> None:
    with pytest.raises(ComponentLoadError, match=r"no module named 'no_such_package_ppf'"):
        load_component_class("no_such_package_ppf.mod.Cls")


def test_module_that_fails_on_import_reports_the_error() -> None:
    with pytest.raises(
        ComponentLoadError,
        match=r"importing module 'tests\.helpers\.broken_import' for class_path .* failed: "
        r"RuntimeError: import-time failure in broken_import",
    ):
        load_component_class("tests.helpers.broken_import.Anything")


def test_missing_class_suggests_a_close_name() -> None:
    with pytest.raises(
        ComponentLoadError,
        match=rf"module '{MODULE}' has no class 'Stpe'; did you mean '{MODULE}\.Step'\?",
    ):
        load_component_class(f"{MODULE}.Stpe")


def test_missing_class_without_a_close_name_has_no_suggestion() -> None:
    with pytest.raises(ComponentLoadError, match=rf"module '{MODULE}' has no class 'Xyzzy'$"):
        load_component_class(f"{MODULE}.Xyzzy")


@pytest.mark.parametrize(("attr", "kind"), [("not_a_class", "function"), ("NOT_A_CLASS_EITHER", "int")])
def test_not_a_class(attr: str, kind: str) -> None:
    with pytest.raises(ComponentLoadError, match=rf"'{MODULE}\.{attr}' is a {kind}, not a class"):
        load_component_class(f"{MODULE}.{attr}")


def test_class_without_run() -> None:
    with pytest.raises(
        ComponentLoadError,
        match=r"class '.*\.NoRun' has no run\(\) method; subclass airflow_ppf\.components\.Component",
    ):
        load_component_class(f"{MODULE}.NoRun")


def test_abstract_class_names_the_missing_methods() -> None:
    with pytest.raises(ComponentLoadError, match=r"class '.*\.AbstractStep' is abstract \(implement: run\)"):
        load_component_class(f"{MODULE}.AbstractStep")


@pytest.mark.parametrize("path", ["Step", ".Step", "tests.helpers.components."])
def test_malformed_class_path(path: str) -> None:
    with pytest.raises(ComponentLoadError, match=r"must look like 'package\.module\.ClassName'"):
        load_component_class(path)


# --------------------------------------------------------------------------------------------------
# create_component
# --------------------------------------------------------------------------------------------------


def test_builds_with_keyword_arguments_and_assigns_the_configured_name() -> None:
    component = create_component(make("Configurable", name="load_orders", path="/in", limit=3))

    assert isinstance(component, helpers.Configurable)
    assert (component.path, component.limit) == ("/in", 3)
    assert component.name == "load_orders"
    assert repr(component) == "<Configurable 'load_orders'>"


def test_from_config_classmethod_is_used_when_defined() -> None:
    # "name" is no argument of FromConfig.__init__: only from_config reads it.
    config = ComponentConfig(name="orders_step", class_path=f"{MODULE}.FromConfig", config={"name": "orders"})

    component = create_component(config)

    assert isinstance(component, helpers.FromConfig)
    assert component.name == "orders_step"
    assert component.built_by == "from_config"
    assert component.table == "db.orders"


def test_duck_typed_class_with_run_is_accepted() -> None:
    component: Any = create_component(make("DuckTyped", name="duck"))

    assert isinstance(component, helpers.DuckTyped)
    assert getattr(component, "_ppf_name", None) == "duck"


def test_kwargs_constructor_accepts_any_key() -> None:
    component = create_component(make("KwargsComponent", anything=1, at_all="x"))

    assert isinstance(component, helpers.KwargsComponent)
    assert component.options == {"anything": 1, "at_all": "x"}


def test_unknown_config_key_suggests_the_closest_argument() -> None:
    with pytest.raises(
        ComponentLoadError,
        match=r"^component 'load': bad config for Configurable: unknown config key 'pth' \(did you mean 'path'\?\); "
        r"accepted keys: path, limit$",
    ) as info:
        create_component(make("Configurable", name="load", pth="/in"))

    assert info.value.component == "load"
    assert info.value.location is None


def test_several_unknown_keys_are_all_listed() -> None:
    with pytest.raises(ComponentLoadError, match=r"unknown config keys 'lmit' \(did you mean 'limit'\?\), 'zzz';"):
        create_component(make("Configurable", path="/in", lmit=1, zzz=2))


def test_missing_required_argument_is_reported() -> None:
    with pytest.raises(
        ComponentLoadError, match=r"bad config for Configurable: missing a required argument: 'path'; accepted keys"
    ):
        create_component(make("Configurable", limit=1))


def test_constructor_error_names_the_component_and_the_exception() -> None:
    with pytest.raises(
        ComponentLoadError,
        match=r"^components\[3\] \('validate'\): building tests\.helpers\.components\.BrokenInit failed: "
        r"ValueError: cannot use value 7$",
    ) as info:
        create_component(make("BrokenInit", name="validate", value=7), location="components[3]")

    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.location == "components[3]"
    assert info.value.reason.startswith("building ")


def test_load_errors_are_prefixed_with_component_and_location() -> None:
    with pytest.raises(ComponentLoadError, match=r"^components\[0\] \('x'\): module '.*' has no class 'Nope'") as info:
        create_component(make("Nope", name="x"), location="components[0]")

    assert info.value.reason.startswith("module ")


def test_from_config_that_raises_is_reported_like_a_constructor() -> None:
    with pytest.raises(ComponentLoadError, match=r"building .*FromConfig failed: KeyError: 'name'"):
        create_component(make("FromConfig"))


# --------------------------------------------------------------------------------------------------
# the component model
# --------------------------------------------------------------------------------------------------


def test_component_name_defaults_to_the_class_name() -> None:
    assert helpers.Step().name == "Step"


def test_component_cannot_be_instantiated_without_run() -> None:
    with pytest.raises(TypeError, match="abstract"):
        helpers.AbstractStep()  # type: ignore[abstract]


def test_dataflow_without_a_session_explains_itself() -> None:
    flow = helpers.SparkStep()
    flow.name = "enrich"

    with pytest.raises(SparkSessionNotAvailableError, match=r"<SparkStep 'enrich'> has no SparkSession yet"):
        _ = flow.spark


def test_dataflow_uses_the_injected_session_and_cancels_its_jobs() -> None:
    class Context:
        cancelled = 0

        def cancelAllJobs(self) -> None:
            Context.cancelled += 1

    class Session:
        sparkContext = Context()

    flow = helpers.SparkStep()
    session: Any = Session()
    flow.set_spark_session(session)

    assert flow.spark is session
    flow.cancel()
    assert Context.cancelled == 1
    assert isinstance(flow, DataFlow)
    assert isinstance(flow, Component)


def test_dataflow_cancel_falls_back_to_interrupt_all_for_spark_connect() -> None:
    class ConnectSession:
        interrupted = 0

        @property
        def sparkContext(self) -> Any:
            raise RuntimeError("no SparkContext in Spark Connect")

        def interruptAll(self) -> None:
            ConnectSession.interrupted += 1

    flow = helpers.SparkStep()
    flow.set_spark_session(ConnectSession())  # type: ignore[arg-type]

    flow.cancel()

    assert ConnectSession.interrupted == 1
