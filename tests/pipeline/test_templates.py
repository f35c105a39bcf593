"""Pipeline templates (budcore.pipeline.templates): rendering, native values, the sandbox, the limits.

``BUDCORE_PROPERTY_EXAMPLES=N`` (or ``HYPOTHESIS_PROFILE=thorough``) raises the example count of
the property tests (default 100; :mod:`budcore.testing.examples`).
"""

from __future__ import annotations

import string
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budcore.domain.errors import ValidationError
from budcore.pipeline import templates
from budcore.pipeline.templates import (
    Sandbox,
    TemplateError,
    TemplateLimits,
    _rewrite_dash_ids,
    is_template,
    referenced_steps,
)
from budcore.testing.examples import examples

EXAMPLES = examples(100)
WHERE = "steps[deploy-llm].config.spec.model_id"
#: Every hostile template must be refused within this many seconds.
PROMPT = 2.0


def context(**params: Any) -> dict[str, Any]:
    return {
        "params": {
            "model": "llama-3-8b",
            "enable_reranker": True,
            "replicas": 3,
            "models": ["llama", "mistral"],
            "flag_text": "false",
            "config": {"lr": 0.1},
            **params,
        },
        "steps": {
            "deploy-llm": {
                "outputs": {"endpoint": "http://llm:8000", "items": [1, 2]},
                "status": "completed",
            },
            "step-1": {"outputs": {"config": {"a": 1}}, "status": "completed"},
            "skipped": {"outputs": {}, "status": "skipped"},
            "x": {"outputs": {}, "status": "completed"},
            "plain": {"outputs": {"url": "http://plain"}, "status": "completed"},
        },
        "run": {"id": "run-42", "pipeline": "rag"},
        "item": {"name": "shard-0"},
        "loop": {"index": 0},
    }


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox()


def refused(sandbox: Sandbox, template: str, ctx: dict[str, Any] | None = None) -> TemplateError:
    """Render ``template``, expecting a prompt, one-line TemplateError naming WHERE."""
    started = time.perf_counter()
    with pytest.raises(TemplateError) as info:
        sandbox.render(template, context() if ctx is None else ctx, where=WHERE)
    elapsed = time.perf_counter() - started
    assert elapsed < PROMPT, f"{template!r} took {elapsed:.2f} s"
    error = info.value
    assert error.path == WHERE
    assert WHERE in str(error)
    assert "\n" not in str(error)
    return error


# -- rendering -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ params.model }}", "llama-3-8b"),
        ("model={{ params.model }}!", "model=llama-3-8b!"),
        ("{{ steps['deploy-llm'].outputs.endpoint }}/v1", "http://llm:8000/v1"),
        ('{{ steps["deploy-llm"].outputs.endpoint }}', "http://llm:8000"),
        ("{{ steps.plain.outputs.url }}", "http://plain"),
        ("{{ params.replicas }}", "3"),
        ("{{ params.replicas * 2 + 1 }}", "7"),
        ("{{ params.model | upper }}", "LLAMA-3-8B"),
        ("{{ params.models | join(',') }}", "llama,mistral"),
        ("{{ params.models | length }}", "2"),
        ("{{ params.models | first }}-{{ params.models | last }}", "llama-mistral"),
        ("{{ params.models | map('upper') | list }}", "['LLAMA', 'MISTRAL']"),
        ("{{ params.config | tojson }}", '{"lr": 0.1}'),
        ("{{ '{\"a\": [1, 2]}' | fromjson }}", "{'a': [1, 2]}"),
        ("{{ ' x ' | trim }}|{{ 'a-b' | replace('-', '_') }}", "x|a_b"),
        ("{{ '%s/%s' | format(run.pipeline, run.id) }}", "rag/run-42"),
        ("{{ '{}:{}'.format(run.pipeline, run.id) }}", "rag:run-42"),
        ("{{ run.id ~ '-' ~ item.name }}", "run-42-shard-0"),
        ("{% for m in params.models %}{{ loop.index }}:{{ m }} {% endfor %}", "1:llama 2:mistral "),
        ("{% if params.enable_reranker %}on{% else %}off{% endif %}", "on"),
        ("{% set n = params.replicas %}{{ range(n) | list }}", "[0, 1, 2]"),
        ("{{ dict(a=1) }}", "{'a': 1}"),
        ("{{ loop.index }}", "0"),
        ("{% macro url(h) %}http://{{ h }}{% endmacro %}{{ url('x') }}", "http://x"),
        # Attribute syntax on a dict prefers the key over the dict method of that name.
        ("{{ steps['deploy-llm'].outputs.items }}", "[1, 2]"),
        ("{{ params.get('model') }}", "llama-3-8b"),
        # A trailing newline is kept; text without {{ or {% is not touched at all.
        ("{{ params.model }}\n", "llama-3-8b\n"),
        ("no template here {# not a comment either #}", "no template here {# not a comment either #}"),
        ("{ params.model }", "{ params.model }"),
    ],
)
def test_render(sandbox: Sandbox, template: str, expected: str) -> None:
    assert sandbox.render(template, context(), where=WHERE) == expected


def test_render_always_gives_text(sandbox: Sandbox) -> None:
    assert sandbox.render("{{ params.enable_reranker }}", context(), where=WHERE) == "True"
    assert sandbox.render("{{ params.models }}", context(), where=WHERE) == "['llama', 'mistral']"


def test_context_is_not_modified(sandbox: Sandbox) -> None:
    ctx = context()
    before = repr(ctx)
    with pytest.raises(TemplateError, match="modifies data"):
        sandbox.render("{{ params.models.append('x') }}", ctx, where=WHERE)
    with pytest.raises(TemplateError, match="modifies data"):
        sandbox.render("{{ params.update({'model': 'x'}) }}", ctx, where=WHERE)
    assert repr(ctx) == before


# -- native values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ params.enable_reranker }}", True),
        ("{{ params.models }}", ["llama", "mistral"]),
        ("{{ params.replicas }}", 3),
        ("  {{ params.replicas }}\n", 3),
        ("{{- params.replicas -}}", 3),
        ("{{ params.config }}", {"lr": 0.1}),
        ("{{ params.replicas * 1.5 }}", 4.5),
        ("{{ none }}", None),
        ("{{ '3' }}", "3"),  # a string stays a string: no literal_eval
        ("{{ params.models | map('upper') }}", ["LLAMA", "MISTRAL"]),  # generators become lists
        ("{{ range(3) }}", [0, 1, 2]),
        ("{{ params.model if false }}", None),  # the implicit else
        ("{{ params.replicas }} replicas", "3 replicas"),
        ("{{ params.replicas }}{{ params.replicas }}", "33"),
        ("{% if true %}{{ params.replicas }}{% endif %}", "3"),
        ("plain", "plain"),
        (7, 7),
        (None, None),
        (True, True),
    ],
)
def test_render_value_native(sandbox: Sandbox, value: Any, expected: Any) -> None:
    assert sandbox.render_value(value, context(), where=WHERE) == expected


def test_render_value_nested(sandbox: Sandbox) -> None:
    value = {
        "{{ params.model }}": "{{ params.model }}",  # keys are not rendered
        "replicas": "{{ params.replicas }}",
        "args": ["--model", "{{ params.model }}", ("{{ params.enable_reranker }}", 1)],
        "env": [{"name": "URL", "value": "{{ steps['deploy-llm'].outputs.endpoint }}/v1"}],
        "n": 2.5,
    }
    assert sandbox.render_value(value, context(), where="steps[s].config") == {
        "{{ params.model }}": "llama-3-8b",
        "replicas": 3,
        "args": ["--model", "llama-3-8b", (True, 1)],
        "env": [{"name": "URL", "value": "http://llm:8000/v1"}],
        "n": 2.5,
    }


def test_render_value_errors_name_the_nested_field(sandbox: Sandbox) -> None:
    value = {"spec": {"env": [{"value": "ok"}, {"value": "{{ params.modle }}"}]}}
    with pytest.raises(TemplateError) as info:
        sandbox.render_value(value, context(), where="steps[s].config")
    assert info.value.path == "steps[s].config.spec.env[1].value"
    assert str(info.value) == (
        "steps[s].config.spec.env[1].value: undefined name 'params.modle' in template '{{ params.modle }}'"
    )


def test_plain_strings_do_not_touch_jinja(sandbox: Sandbox) -> None:
    fresh = Sandbox()
    assert fresh.render_value({"a": ["x", "y {z}"]}, {}, where=WHERE) == {"a": ["x", "y {z}"]}
    assert fresh.render("x" * 200_000, {}, where=WHERE) == "x" * 200_000  # not a template: no limit
    assert not fresh._text_cache and not fresh._native_cache


# -- undefined names and default -------------------------------------------------------------------


def test_default_works_with_strict_undefined(sandbox: Sandbox) -> None:
    ctx = context()
    assert sandbox.render("{{ steps['skipped'].outputs.url | default('') }}", ctx, where=WHERE) == ""
    assert sandbox.render("{{ steps.skipped.outputs.url | default('none') }}", ctx, where=WHERE) == "none"
    assert sandbox.render("{{ params.missing | d(5) }}", ctx, where=WHERE) == "5"
    assert sandbox.render("{{ params.missing is defined }}", ctx, where=WHERE) == "False"
    assert sandbox.render_value("{{ params.missing | default([]) }}", ctx, where=WHERE) == []


def test_undefined_attribute_names_path_and_where(sandbox: Sandbox) -> None:
    error = refused(sandbox, "{{ steps['x'].outputs.url }}")
    assert str(error) == (
        f"{WHERE}: undefined name \"steps['x'].outputs.url\" in template \"{{{{ steps['x'].outputs.url }}}}\""
    )
    assert isinstance(error, ValidationError)


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("{{ params.modle }}", "params.modle"),
        ("{{ parms.model }}", "parms"),
        ("{{ steps.plain.outputs.url }}{{ steps.x.outputs.url }}", "steps.x.outputs.url"),
        ("{{ steps.nope.outputs.url }}", "steps.nope"),
        ("{% if params.flag %}x{% endif %}", "params.flag"),
        ("{{ steps.step-1.outputs.missing }}", "steps['step-1'].outputs.missing"),
    ],
)
def test_undefined_messages(sandbox: Sandbox, template: str, path: str) -> None:
    assert f"undefined name {path!r} in template {template!r}" in str(refused(sandbox, template))


def test_undefined_key_is_named(sandbox: Sandbox) -> None:
    assert "undefined name 'nokey' in template" in str(refused(sandbox, "{{ params[nokey] }}"))
    assert "undefined name 'nokey' in template" in str(refused(sandbox, "{{ (none)[nokey] }}"))


def test_plain_undefined_of_an_empty_sequence(sandbox: Sandbox) -> None:
    assert "undefined value" in str(refused(sandbox, "{{ [] | first }}"))


# -- dash ids --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ steps.step-1.outputs.config }}", "{{ steps['step-1'].outputs.config }}"),
        ("{{ steps.deploy-llm-2.outputs.x }}", "{{ steps['deploy-llm-2'].outputs.x }}"),
        ("{% if steps.a-b.status == 'ok' %}y{% endif %}", "{% if steps['a-b'].status == 'ok' %}y{% endif %}"),
        ("{{ steps.plain.outputs.url }}", "{{ steps.plain.outputs.url }}"),  # no dash: unchanged
        ("{{ steps.a - 1 }}", "{{ steps.a - 1 }}"),  # spaces: a subtraction
        ("steps.a-b {{ x }}", "steps.a-b {{ x }}"),  # text outside blocks
        ("{{ 'steps.a-b' }}", "{{ 'steps.a-b' }}"),  # string literal
        ("{# steps.a-b #}", "{# steps.a-b #}"),
        (
            "{% raw %}{{ steps.a-b }}{% endraw %}{{ steps.c-d }}",
            "{% raw %}{{ steps.a-b }}{% endraw %}{{ steps['c-d'] }}",
        ),
        ("{{ mysteps.a-b }} {{ x.steps.a-b }}", "{{ mysteps.a-b }} {{ x.steps.a-b }}"),
        ("{{ steps.a-b", "{{ steps.a-b"),  # unterminated: left for Jinja to report
    ],
)
def test_rewrite_dash_ids(source: str, expected: str) -> None:
    assert _rewrite_dash_ids(source) == expected


def test_dash_id_syntax_renders(sandbox: Sandbox) -> None:
    ctx = context()
    assert sandbox.render_value("{{ steps.step-1.outputs.config }}", ctx, where=WHERE) == {"a": 1}
    assert sandbox.render("{{ steps.deploy-llm.outputs.endpoint ~ '/v1' }}", ctx, where=WHERE) == (
        "http://llm:8000/v1"
    )
    assert referenced_steps("{{ steps.step-1.outputs.config }}") == {"step-1"}


# -- evaluate --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{{ params.enable_reranker }}", True),
        ("params.enable_reranker", True),
        ("not params.enable_reranker", False),
        ("params.replicas > 2", True),
        ("params.replicas > 5", False),
        ("{{ params.models }}", True),
        ("{{ [] }}", False),
        ("{{ 0 }}", False),
        ("{{ none }}", False),
        ("{{ params.flag_text }}", False),  # the string "false"
        ("{{ 'False' }}", False),
        ("{{ ' NO ' }}", False),
        ("{{ '0' }}", False),
        ("{{ '' }}", False),
        ("{{ 'yes' }}", True),
        ("{{ 'anything' }}", True),
        ("{% if params.enable_reranker %}false{% endif %}", False),  # rendered text
        ("{% if params.enable_reranker %}ok{% endif %}", True),
        ("x {{ params.replicas }}", True),
        ("false", False),
        ("False", False),
        ("no", False),
        ("0", False),
        ("", False),
        ("  ", False),
        ("true", True),
        ("yes", True),
        ("1", True),
        ("steps['deploy-llm'].status == 'completed'", True),
        ("steps.skipped.status == 'completed'", False),
        ("steps.skipped.outputs.url is defined", False),
    ],
)
def test_evaluate(sandbox: Sandbox, expression: str, expected: bool) -> None:
    assert sandbox.evaluate(expression, context(), where=WHERE) is expected


def test_evaluate_errors(sandbox: Sandbox) -> None:
    with pytest.raises(TemplateError, match=r"undefined name 'params.nope'"):
        sandbox.evaluate("params.nope", context(), where=WHERE)
    with pytest.raises(TemplateError, match="syntax error"):
        sandbox.evaluate("params.replicas >", context(), where=WHERE)


# -- hostile templates -----------------------------------------------------------------------------

HOSTILE = [
    ("{{ ''.__class__ }}", "Python internal ('__class__')"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "Python internal"),
    ("{{ self.__init__.__globals__ }}", "Python internal"),
    ("{{ self._TemplateReference__context }}", "Python internal"),
    ("{{ lipsum.__globals__ }}", "Python internal"),
    ("{{ cycler.__init__.__globals__.os }}", "Python internal"),
    ("{{ joiner.__init__.__globals__ }}", "Python internal"),
    ("{{ namespace.__init__.__globals__ }}", "Python internal"),
    ("{{ range.__globals__ }}", "Python internal"),
    ("{{ params.__class__ }}", "Python internal ('__class__')"),
    ("{{ params|attr('__class__') }}", "Python internal ('__class__')"),
    ("{{ params|attr('__cla' ~ 'ss__') }}", "Python internal ('__class__')"),
    ("{{ params['__cla' ~ 'ss__'] }}", "Python internal ('__class__')"),
    ("{{ params|map(attribute='__class__')|list }}", "Python internal"),
    ("{{ params.models|map('attr', '__class__')|list }}", "Python internal"),
    ("{{ params.models|selectattr('__class__')|list }}", "Python internal"),
    ("{{ '{0.__class__}'.format(1) }}", "Python internal"),
    ("{{ '{0._TemplateReference__context}'.format(self) }}", "Python internal"),
    ("{{ (1).real.__class__.mro() }}", "Python internal"),
    ("{{ ''.mro }}", "Python internal ('mro')"),
    ("{{ x.func_globals }}", "Python internal ('func_globals')"),
    ("{% for x in range(1) %}{{ loop.__class__ }}{% endfor %}", "Python internal"),
    ("{% import 'os' as os %}", "'{% import %}'"),
    ("{% from 'os' import path %}", "'{% from %}'"),
    ("{% include '/etc/passwd' %}", "'{% include %}'"),
    ("{% extends 'x' %}", "'{% extends %}'"),
    ("{% autoescape true %}x{% endautoescape %}", "autoescape"),
    ("{{ 'x'.encode() }}", "'str.encode': not allowed"),
    ("{{ 'x'.expandtabs(10**9) }}", "'str.expandtabs': not allowed"),
    ("{{ 'x'.translate({120: 'y' * 1000}) }}", "'str.translate': not allowed"),
    ("{{ (1).to_bytes(10**9, 'big') }}", "'int.to_bytes': not allowed"),
    ("{{ {}.fromkeys(range(10)) }}", "'dict.fromkeys': not allowed"),
    ("{{ range(10**9)|list }}", "range of 1000000000 items exceeds the limit of 10000"),
    ("{{ range(10**30) }}", "range of more than 10**18 items exceeds the limit of 10000"),
    ("{{ 'a' * 10**9 }}", "string of 1000000000 characters exceeds the limit of 100000"),
    ("{{ 10**9 * 'a' }}", "string of 1000000000 characters exceeds the limit of 100000"),
    ("{{ [1] * 10**9 }}", "list of 1000000000 items exceeds the limit of 10000"),
    ("{{ (1,) * 10**9 }}", "tuple of 1000000000 items exceeds the limit of 10000"),
    ("{{ 10 ** (10 ** 10) }}", "is too large"),
    ("{{ 2 ** 100000 }}", "is too large"),
    ("{{ (2 ** 10000) * (2 ** 10000) }}", "exceeds 14000 bits"),
    (
        "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
        "template output exceeds 100000 characters",
    ),
    ("{{ 1/0 }}", "division by zero in template '{{ 1/0 }}'"),
    ("{{ 1 // 0 }}", "division by zero"),
    ("{{ 7 % 0 }}", "division by zero"),
    ("{{ 10.0 ** 400 }}", "number too large"),
    ("{{ params.model + 1 }}", "TypeError"),
    ("{{ range('a') }}", "TypeError"),
    ("{{ ('[' * 5000 ~ ']' * 5000) | fromjson }}", "deeply"),
    ("{{ 'nope'|fromjson }}", "fromjson: invalid JSON"),
    ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "deeply"),
    ("{{ config }}", "undefined name 'config'"),
    ("{{ request }}", "undefined name 'request'"),
    ("{{ environ }}", "undefined name 'environ'"),
    ("{{ namespace }}", "undefined name 'namespace'"),
    ("{{ lipsum() }}", "undefined name 'lipsum'"),
    ("{{ cycler(1, 2) }}", "undefined name 'cycler'"),
    ("{{ joiner() }}", "undefined name 'joiner'"),
    ("{% set ns = namespace(a=1) %}{% set ns.a = 2 %}", "undefined name 'namespace'"),
    ("{{ params.model }}" + "x" * 100_000, "template source of 100018 characters exceeds the limit of 64000"),
    ("{{ params.model", "template syntax error at line 1"),
    ("{{ } }}", "template syntax error at line 1: unexpected '}'"),
    ("a\nb\n{% for %}", "template syntax error at line 3"),
    ("{% for loop in params.models %}{% endfor %}", "template syntax error"),
]


@pytest.mark.parametrize(("template", "message"), HOSTILE, ids=[t[:40] for t, _ in HOSTILE])
def test_hostile_templates_are_refused(sandbox: Sandbox, template: str, message: str) -> None:
    assert message in str(refused(sandbox, template))


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ params|attr('__class__') }}",
        "{% include '/etc/passwd' %}",
        "{{ params.model",
    ],
)
def test_check_refuses_statically(sandbox: Sandbox, template: str) -> None:
    with pytest.raises(TemplateError) as info:
        sandbox.check(template, where=WHERE)
    assert info.value.path == WHERE


def test_check_parses_without_compiling_and_render_caches_the_compiled_template() -> None:
    fresh = Sandbox()
    fresh.check("{{ steps['nope'].outputs.url }}", where=WHERE)  # undefined only at render time
    fresh.check("{% if params.x %}a{% endif %}", where=WHERE)
    fresh.check("plain text", where=WHERE)
    assert fresh._text_cache == {}  # validation compiles nothing
    assert list(fresh._checked_sources) == ["{% if params.x %}a{% endif %}"]  # parsed once
    with pytest.raises(TemplateError, match="Unexpected end of template"):
        fresh.check("{% if params.x %}a", where=WHERE)
    text = "{{ params.model }}"
    fresh.render(text, context(), where=WHERE)
    compiled = fresh._text_cache[text]
    fresh.render(text, context(), where=WHERE)
    assert fresh._text_cache[text] is compiled


def test_jinja_power_is_left_associative(sandbox: Sandbox) -> None:
    # Jinja reads ``10 ** 10 ** 10`` as ``(10 ** 10) ** 10``: a 101-digit number, within bounds.
    assert sandbox.render("{{ 10 ** 10 ** 10 }}", context(), where=WHERE) == str(10**100)


# -- the limits ------------------------------------------------------------------------------------

AMPLIFIERS = [
    "{% set a = 'x' * 100000 %}{{ a.replace('', a) }}",
    "{% set a = 'x' * 100000 %}{{ a|replace('x', a) }}",
    "{% set a = 'x' * 50000 %}{{ a.join(['a'] * 10000) }}",
    "{% set a = 'x' * 50000 %}{{ range(5)|map('string')|join(a) }}",
    "{% set a = 'x' * 99999 %}{{ a ~ a }}",
    "{% set a = 'x' * 99999 %}{{ a + a }}",
    "{{ '%999999999s' % 1 }}",
    "{{ '%*s' % (999999999, 1) }}",
    "{{ '%.99999999f' % 1.0 }}",
    "{{ '%999999999s'|format(1) }}",
    "{% set a = 'x' * 1000 %}{{ '" + "%(a)s" * 200 + "' % {'a': a} }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{{ '{a:>{w}}'.format(a=1, w=999999999) }}",
    "{% set a = 'x' * 1000 %}{{ '" + "{0}" * 2000 + "'.format(a) }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ 'x'|center(10**9) }}",
    "{{ 'x'|indent(10**9) }}",
    "{{ ('a\\n' * 49999)|indent(100) }}",
    "{{ params|tojson(10**6) }}",
    "{{ 'x y'|wordwrap(1, wrapstring='z' * 100000) }}",
    "{{ range(10)|batch(10**9, 'x')|list }}",
    "{{ range(10)|slice(10**9)|list }}",
    "{{ [[1] * 10000] * 10000 | sum(start=[]) }}",
    # sharing: each level is ten references to the one below
    "{% set a = [1,1,1,1,1,1,1,1,1,1] %}{% set b = [a,a,a,a,a,a,a,a,a,a] %}"
    "{% set c = [b,b,b,b,b,b,b,b,b,b] %}{% set d = [c,c,c,c,c,c,c,c,c,c] %}"
    "{% set e = [d,d,d,d,d,d,d,d,d,d] %}{{ e }}",
    "{% set a = ('x' * 1000,) * 1000 %}{{ [a, a] }}",
    "{% set a = {'k': 'x' * 60000} %}{{ dict(a=a, b=a) }}",
    # captured text is bounded while it is captured
    "{% set x %}{% for i in range(10000) %}{{ 'y' * 99999 }}{% endfor %}{% endset %}{{ x|length }}",
    "{% macro m() %}{% for i in range(10000) %}{{ 'y' * 999 }}{% endfor %}{% endmacro %}{{ m()|length }}",
    "{% filter upper %}{% for i in range(10000) %}{{ 'y' * 999 }}{% endfor %}{% endfilter %}",
    # everything built along the way adds up
    "{% set r = range(10000) %}{{ ([r] * 10000)|map('list')|list|length }}",
    "{{ range(10000)|map('string')|map('center', 99999)|list|length }}",
]


@pytest.mark.parametrize("template", AMPLIFIERS, ids=[t[:50] for t in AMPLIFIERS])
def test_amplification_is_refused_before_it_allocates(sandbox: Sandbox, template: str) -> None:
    message = str(refused(sandbox, template))
    assert any(
        words in message
        for words in ("exceeds", "larger than the limit", "not allowed", "adds numbers only", "in all")
    ), message


def test_time_limit_bounds_loops_without_output() -> None:
    fast = Sandbox(TemplateLimits(max_render_seconds=0.2))
    template = "{% set s = 'x' * 10000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
    started = time.perf_counter()
    with pytest.raises(TemplateError, match=r"exceeded the time limit of 0\.2 s"):
        fast.render(template, context(), where=WHERE)
    assert time.perf_counter() - started < 1.0


def test_time_limit_bounds_recursion_fan_out() -> None:
    fast = Sandbox(TemplateLimits(max_render_seconds=0.2))
    template = (
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    )
    started = time.perf_counter()
    with pytest.raises(TemplateError, match="time limit"):
        fast.render(template, context(), where=WHERE)
    assert time.perf_counter() - started < 1.0


def test_infinite_recursion_is_refused(sandbox: Sandbox) -> None:
    assert "deeply" in str(refused(sandbox, "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"))


def test_custom_limits() -> None:
    small = Sandbox(TemplateLimits(max_source_chars=40, max_output_chars=10, max_range=5))
    ctx = context()
    assert small.render("{{ range(5)|list|length }}", ctx, where=WHERE) == "5"
    with pytest.raises(TemplateError, match="range of 6 items exceeds the limit of 5"):
        small.render("{{ range(6)|list }}", ctx, where=WHERE)
    assert small.render("{{ 'x' * 10 }}", ctx, where=WHERE) == "x" * 10
    with pytest.raises(TemplateError, match="exceeds the limit of 10"):
        small.render("{{ 'x' * 11 }}", ctx, where=WHERE)
    with pytest.raises(TemplateError, match="template output exceeds 10 characters"):
        small.render("{% for i in range(5) %}abc{% endfor %}", ctx, where=WHERE)
    with pytest.raises(TemplateError, match="template source of 41 characters exceeds the limit of 40"):
        small.check("{{ params.model }}" + " " * 23, where=WHERE)


@pytest.mark.parametrize("field", ["max_source_chars", "max_output_chars", "max_range", "max_render_seconds"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        TemplateLimits(**{field: 0})


def test_allowed_methods_work(sandbox: Sandbox) -> None:
    ctx = context()
    assert sandbox.render("{{ 'a,b'.split(',') }}", ctx, where=WHERE) == "['a', 'b']"
    assert sandbox.render("{{ '-'.join(params.models) }}", ctx, where=WHERE) == "llama-mistral"
    assert sandbox.render("{{ 'ab'.replace('a', 'x') }}", ctx, where=WHERE) == "xb"
    assert sandbox.render("{{ 'x'.rjust(3, '.') }}", ctx, where=WHERE) == "..x"
    assert sandbox.render("{{ params.model.startswith('llama') }}", ctx, where=WHERE) == "True"
    assert sandbox.render("{{ params.config.keys()|list }}", ctx, where=WHERE) == "['lr']"
    assert sandbox.render("{{ '%(model)s!' % params }}", ctx, where=WHERE) == "llama-3-8b!"
    assert sandbox.render("{{ 2 ** 64 }}", ctx, where=WHERE) == str(2**64)


# -- caching and speed -----------------------------------------------------------------------------


def test_cached_render_is_fast() -> None:
    fresh = Sandbox()
    ctx = context()
    template = "{{ steps['deploy-llm'].outputs.endpoint }}/{{ params.model }}"
    fresh.render(template, ctx, where=WHERE)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(2000):
            fresh.render(template, ctx, where=WHERE)
        best = min(best, (time.perf_counter() - started) / 2000)
    assert best < 100e-6, f"{best * 1e6:.1f} µs per cached render"  # about 10 µs on a laptop
    assert len(fresh._text_cache) == 1


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "_CACHE_SIZE", 8)
    fresh = Sandbox()
    for i in range(20):
        assert fresh.render(f"{{{{ {i} }}}}", {}, where=WHERE) == str(i)
    assert list(fresh._text_cache) == [f"{{{{ {i} }}}}" for i in range(12, 20)]


def test_concurrent_renders_keep_their_own_deadlines() -> None:
    sandbox = Sandbox(TemplateLimits(max_render_seconds=0.3))
    results: list[str] = []
    errors: list[str] = []

    def slow() -> None:
        try:
            sandbox.render(
                "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
                {},
                where="slow",
            )
        except TemplateError as exc:
            errors.append(str(exc))

    def quick() -> None:
        for _ in range(200):
            results.append(sandbox.render("{{ params.model }}", context(), where="quick"))

    threads = [threading.Thread(target=slow), threading.Thread(target=quick)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["llama-3-8b"] * 200
    assert len(errors) == 1 and errors[0].startswith("slow: ") and "time limit" in errors[0]


# -- static analysis -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ steps['a'].outputs.x }}", {"a"}),
        ('{{ steps["a"].outputs.x }}', {"a"}),
        ("{{ steps.a.outputs.x }}", {"a"}),
        ("{{ steps.step-1.outputs.config }}", {"step-1"}),
        ("{{ steps['deploy-llm'].outputs.endpoint }}", {"deploy-llm"}),
        ("{{ x | default(steps.b.outputs.y) }}", {"b"}),
        ("{{ steps.a.outputs.list | map(attribute='n') | join(steps.c.outputs.sep) }}", {"a", "c"}),
        ("{% if steps.a.status == 'completed' and steps['b'].outputs.ok %}x{% endif %}", {"a", "b"}),
        ("{% for s in steps.a.outputs.shards %}{{ s }}{% endfor %}", {"a"}),
        ("{{ steps.get('a') }}", {"a"}),
        ("{{ steps | attr('a') }}", {"a"}),
        (
            {"k": "{{ steps.a.x }}", "l": ["{{ steps.b.x }}", {"m": ("{{ steps.c.x }}",)}], "n": 3},
            {"a", "b", "c"},
        ),
        ("{{ steps[name].outputs }}", {"*"}),
        ("{{ steps[params.step] }}", {"*"}),
        ("{% for id, s in steps.items() %}{{ s }}{% endfor %}", {"*"}),
        ("{{ steps | tojson }}", {"*"}),
        ("{% set s = steps %}{{ s.a }}", {"*"}),
        ("{{ params.model }}", set()),
        ("steps.a.outputs.x", set()),  # not a template
        ("{{ steps['a'] ", set()),  # unparseable: check() reports it
        (42, set()),
    ],
)
def test_referenced_steps(value: Any, expected: set[str]) -> None:
    assert referenced_steps(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ x }}", True),
        ("{% if x %}{% endif %}", True),
        ("plain", False),
        ("{# comment #}", False),
        ({"a": ["x", {"b": "{{ y }}"}]}, True),
        ({"{{ key }}": "plain"}, False),
        (["a", ("b",)], False),
        (3, False),
    ],
)
def test_is_template(value: Any, expected: bool) -> None:
    assert is_template(value) is expected
    assert Sandbox.is_template(value) is expected


# -- properties ------------------------------------------------------------------------------------

TOKENS = [
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    " ",
    "x",
    "1",
    "9",
    "'",
    '"',
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "|",
    "~",
    "*",
    "**",
    "+",
    "-",
    "/",
    "%",
    "=",
    "==",
    "range",
    "steps",
    "params",
    "loop",
    "self",
    "for",
    "in",
    "if",
    "endfor",
    "endif",
    "set",
    "endset",
    "macro",
    "endmacro",
    "call",
    "raw",
    "endraw",
    "__class__",
    "attr",
    "join",
    "default",
    "upper",
    "format",
    "replace",
    "10",
    "**10",
    "a-b",
    "steps.a-b",
    "true",
    "none",
]

template_texts = st.one_of(
    st.text(alphabet=string.printable + "{{}}%%##", max_size=80),
    st.lists(st.sampled_from(TOKENS), max_size=40).map("".join),
)


ATOMS = [
    "1",
    "10",
    "99999",
    "10**5",
    "'x'",
    "'ab '",
    "''",
    "params.model",
    "params.models",
    "params.config",
    "params.replicas",
    "[1, 2]",
    "(1, 'a')",
    "{'a': 1}",
    "range(100)",
    "none",
    "true",
    "self",
    "loop",
    "steps.x",
    "steps",
    "'%s'",
    "'{0}'",
    "1.5",
    "-3",
    "params.nope",
    "nokey",
]
OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "<", "in", "and", "or"]
FILTERS = [
    "upper",
    "list",
    "join",
    "join('xx')",
    "length",
    "string",
    "tojson",
    "tojson(4)",
    "pprint",
    "center(50)",
    "indent(8)",
    "replace('a', 'bb')",
    "replace('', 'z')",
    "batch(3)",
    "slice(3)",
    "map('string')",
    "sort",
    "unique",
    "reverse",
    "first",
    "last",
    "sum",
    "min",
    "max",
    "default(1)",
    "int",
    "float",
    "abs",
    "round",
    "trim",
    "title",
    "wordwrap(5)",
    "truncate(3)",
    "urlize",
    "striptags",
    "items",
    "dictsort",
    "groupby('real')",
    "format(1)",
    "fromjson",
    "e",
    "wordcount",
    "urlencode",
    "xmlattr",
    "filesizeformat",
    "select",
    "reject",
    "selectattr('real')",
    "attr('real')",
    "count",
]
METHODS = [
    ".upper()",
    ".split()",
    ".join(['a', 'b'])",
    ".replace('a', 'b')",
    ".center(20)",
    ".format(1)",
    ".get('k')",
    ".items()",
    ".count(1)",
    ".index(1)",
    ".keys()",
    ".startswith('a')",
    ".zfill(30)",
]
expressions = st.recursive(
    st.sampled_from(ATOMS),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(OPERATORS), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, st.sampled_from(FILTERS)).map(lambda t: f"{t[0]}|{t[1]}"),
        st.tuples(inner, st.sampled_from(METHODS)).map("".join),
        st.tuples(inner, inner).map(lambda t: f"[{t[0]}, {t[1]}]"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]})[{t[1]}]"),
    ),
    max_leaves=12,
)
NESTED_LOOPS = "{% for i in v %}{% for j in v %}{{ i ~ j }}{% endfor %}{% endfor %}"
structured = st.one_of(
    expressions.map(lambda e: "{{ " + e + " }}"),
    st.tuples(expressions, expressions).map(
        lambda t: f"{{% for i in {t[0]} %}}{{{{ {t[1]} }}}}{{% endfor %}}"
    ),
    expressions.map(lambda e: "{% set v = " + e + " %}" + NESTED_LOOPS),
)


@settings(max_examples=EXAMPLES)
@given(st.one_of(template_texts, structured))
def test_any_text_renders_or_raises_template_error(template: str) -> None:
    sandbox = Sandbox(TemplateLimits(max_render_seconds=0.5))
    started = time.perf_counter()
    try:
        result = sandbox.render(template, context(), where=WHERE)
    except TemplateError as exc:
        assert exc.path == WHERE
        assert "\n" not in str(exc)
    else:
        assert isinstance(result, str)
    assert time.perf_counter() - started < 1.5
    try:
        sandbox.render_value(template, context(), where=WHERE)
        sandbox.evaluate(template, context(), where=WHERE)
    except TemplateError:
        pass
    assert isinstance(referenced_steps(template), set)


@settings(max_examples=EXAMPLES)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_check_agrees_with_render_on_compile_errors(template: str) -> None:
    sandbox = Sandbox()
    try:
        sandbox.check(template, where=WHERE)
    except TemplateError as exc:
        with pytest.raises(TemplateError) as info:
            sandbox.render(template, context(), where=WHERE)
        assert str(info.value) == str(exc)
