"""Dataclass configs read from TOML with `section.field` overrides: the machinery every stage's config shares.

A stage's config is a root dataclass with one field per [section], each a dataclass of plain fields (bool, int,
float, str, list[...]). A run is: defaults <- a preset or TOML file <- overrides {"section.field": value}. Unknown
sections and fields are refused with a "did you mean" hint, values are checked against the field types, and
relative paths in a TOML file are taken from that file's folder. The stage keeps its own dataclasses, presets,
error class and validation; a `ConfigSchema` only says how to fill them in.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

MAX_CONFIG_BYTES = 1024**2  # a config is a few kB; a larger file is the wrong file (an image, a checkpoint)


def field_types(cls: type) -> dict[str, object]:
    """A dataclass's fields and their (resolved) types, in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def parse_value(text: str, expected) -> object:
    """A command-line value for a field of type `expected`: "3", "0.5", "true", "a,b" or '["a", "b"]'."""
    text = text.strip()
    if expected is str:
        return text
    if expected is bool and text.lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
        return text.lower() in ("true", "yes", "1", "on")
    if typing.get_origin(expected) is list and not text.startswith("["):
        (item_type,) = typing.get_args(expected)
        return [parse_value(part, item_type) for part in text.split(",") if part.strip()]
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # left to coerce, which names the field and the expected type


@dataclass(frozen=True)
class ConfigSchema:
    """How one stage's TOML files and overrides fill its root config dataclass.

    `error` is the stage's ConfigError. The wording fields keep each stage's messages as its users know them.
    """

    root: type  # the stage's config dataclass: one field per [section]
    error: type[Exception]
    path_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # section -> fields holding paths
    path_keywords: tuple[str, ...] = ()  # path-field values that are names, not paths (besides "@..." and bare names)
    known_label: str = "known fields"  # "...; <known_label>: a, b, c" after an unknown name
    override_where: str = "command line"  # names a bad override key in errors; may use {key!r}
    override_syntax: str = "section.field, e.g. train.learning_rate"  # what an override key should look like

    def sections(self) -> dict[str, type]:
        return field_types(self.root)

    def unknown(self, name: str, known, where: str) -> Exception:
        close = difflib.get_close_matches(name, list(known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return self.error(f"{where}: unknown field {name!r}{hint}; {self.known_label}: {', '.join(sorted(known))}")

    def coerce(self, value, expected, where: str):
        """Check a TOML / CLI value against a field's type; ints are accepted for floats."""
        if expected is bool:
            if isinstance(value, bool):
                return value
        elif expected is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif expected is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif expected is str:
            if isinstance(value, str):
                return value
        elif typing.get_origin(expected) is list:
            (item_type,) = typing.get_args(expected)
            if isinstance(value, list):
                return [self.coerce(v, item_type, f"{where}[{i}]") for i, v in enumerate(value)]
        type_name = getattr(expected, "__name__", str(expected))
        raise self.error(f"{where}: expected {type_name}, got {value!r} ({type(value).__name__})")

    def resolve_path(self, value: str, base_dir: Path) -> str:
        """Relative paths in a TOML file are relative to that file; "@tiny", keywords and bare names are kept."""
        if (not value or value.startswith("@") or value in self.path_keywords
                or ("/" not in value and "." not in value)):
            return value
        p = Path(value).expanduser()
        return str(p if p.is_absolute() else (base_dir / p).resolve())

    def apply(self, config, data: dict, source: str, base_dir: Path | None) -> None:
        """Set the fields of `data` ({section: {field: value}}) on `config`, checking every name and type."""
        sections = self.sections()
        for section_name, values in data.items():
            if section_name not in sections:
                raise self.unknown(section_name, sections, f"{source}: section")
            if not isinstance(values, dict):
                raise self.error(f"{source}: [{section_name}] must be a table of fields, got {values!r}")
            section = getattr(config, section_name)
            types = field_types(type(section))
            for name, value in values.items():
                if name not in types:
                    raise self.unknown(name, types, f"{source}: [{section_name}]")
                value = self.coerce(value, types[name], f"{source}: {section_name}.{name}")
                if base_dir is not None and name in self.path_fields.get(section_name, ()):
                    value = self.resolve_path(value, base_dir)
                setattr(section, name, value)

    def override_type(self, key: str) -> tuple[str, str, object]:
        """(section, field, type) of an override key "section.field"; the stage's error when there is none."""
        if "." not in key:
            raise self.error(f"override {key!r}: expected {self.override_syntax}")
        section, name = key.split(".", 1)
        where = self.override_where.format(key=key)
        sections = self.sections()
        if section not in sections:
            raise self.unknown(section, sections, f"{where}: section")
        types = field_types(sections[section])
        if name not in types:
            raise self.unknown(name, types, f"{where}: [{section}]")
        return section, name, types[name]

    def read_toml(self, path: str | Path) -> dict:
        path = Path(path)
        if path.is_dir():
            raise self.error(f"{path} is a folder; expected a TOML config file")
        if not path.is_file():
            raise self.error(f"config file not found: {path}")
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise self.error(f"{path}: {path.stat().st_size} bytes; a TOML config file is at most "
                             f"{MAX_CONFIG_BYTES // 1024 ** 2} MB")
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.error(f"{path}: byte {data[exc.start]:#04x} at offset {exc.start} is not UTF-8; expected a "
                             "TOML config file (UTF-8 text)") from None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise self.error(f"{path}: not valid TOML: {exc}") from exc

    def load(self, path: str | Path | None, preset: str | None, presets: Mapping[str, Path],
             overrides: Mapping[str, object] | None):
        """Defaults <- preset or TOML file <- overrides {"section.field": value}; the stage validates after."""
        config = self.root()
        if preset is not None and path is not None:
            raise self.error("give either a preset or a config file, not both")
        if preset is not None:
            if preset not in presets:
                raise self.error(f"unknown preset {preset!r}; presets: {', '.join(presets)}")
            path = presets[preset]
        if path is not None:
            path = Path(path)
            self.apply(config, self.read_toml(path), str(path), path.parent.resolve())
        nested: dict[str, dict] = {}
        for key, value in (overrides or {}).items():
            section, name, expected = self.override_type(key)
            if isinstance(value, str):
                value = parse_value(value, expected)
            nested.setdefault(section, {})[name] = value
        self.apply(config, nested, "command line", Path.cwd())
        return config
