"""Program text -> ``Program``.  Parses with ``ast``; never executes anything.

Accepted text: one ``def NAME(params):`` whose body is assignments ``name = expression`` (or
``name op= expression`` for ``+ - * / **``) followed by one ``return``.  Expressions are names,
int/float literals, ``+ - * / **``, unary ``-``/``+``, single comparisons ``> >= < <= ==`` and
calls of ops by name with positional operands; nested expressions are flattened into
temporaries.  ``x = y`` and ``x = 0.5`` make ``x`` an alias (no statement).  Comments are
ignored.  Everything else is a ``ProgramError`` naming line, column and problem.

Resource bounds (hostile input): texts over ``MAX_TEXT_CHARS`` characters, bracket nesting
over ``MAX_NESTING``, expressions deeper than ``MAX_DEPTH`` and programs over
``MAX_STATEMENTS`` statements are rejected before or while parsing, in time linear in the text.
"""

from __future__ import annotations

import ast
import math
import os

from programs.errors import ProgramError
from programs.ops import INFIX, OPS
from programs.program import INPUTS, Operand, Program, Statement

MAX_TEXT_CHARS = 100_000
MAX_NESTING = 40
MAX_DEPTH = 60
MAX_STATEMENTS = 2_000

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "power"}
_COMPARE = {ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le", ast.Eq: "eq"}
_HINTS = {
    ast.Import: "imports are not allowed",
    ast.ImportFrom: "imports are not allowed",
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "subscripts are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.For: "loops are not allowed (programs are straight-line)",
    ast.AsyncFor: "loops are not allowed (programs are straight-line)",
    ast.While: "loops are not allowed (programs are straight-line)",
    ast.If: "'if' is not allowed; use where(c, a, b)",
    ast.IfExp: "conditional expressions are not allowed; use where(c, a, b)",
    ast.JoinedStr: "strings are not allowed",
    ast.Starred: "starred arguments are not allowed",
    ast.FloorDiv: "operator '//' is not allowed",
    ast.Mod: "operator '%' is not allowed; use mod(a, b)",
    ast.MatMult: "operator '@' is not allowed",
}


def parse(text: str, source: str | None = None) -> Program:
    """Parse program text.  ``source`` (a file name) is put in error messages."""
    try:
        return _Parser(text).program()
    except ProgramError as err:
        raise err.with_source(source) if source else err


def load(path: str | os.PathLike) -> Program:
    """Read and parse a program file; any problem (unreadable, not UTF-8, invalid program) is a
    ProgramError naming the file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TEXT_CHARS * 4 + 1)
    except OSError as err:
        raise ProgramError(f"cannot read program file: {err.strerror}", source=path) from None
    if len(data) > MAX_TEXT_CHARS * 4:
        raise ProgramError(f"program text longer than {MAX_TEXT_CHARS} characters", source=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ProgramError(f"not valid UTF-8 (byte {err.start})", line, 0, path) from None
    return parse(text, source=path)


def _position(node: ast.AST) -> tuple[int, int]:
    return getattr(node, "lineno", 0), getattr(node, "col_offset", -1) + 1


def _error(node: ast.AST, message: str) -> ProgramError:
    return ProgramError(message, *_position(node))


def _check_bounds(text: str) -> None:
    if not isinstance(text, str):
        raise ProgramError(f"program text must be str, not {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise ProgramError(f"program text longer than {MAX_TEXT_CHARS} characters")
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ProgramError("program text contains a NUL character", line, 0)
    depth, line = 0, 1
    for ch in text:
        if ch in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise ProgramError(f"brackets nested deeper than {MAX_NESTING}", line, 0)
        elif ch in ")]}":
            depth -= 1
        elif ch == "\n":
            line += 1


def _check_depth(tree: ast.AST) -> None:
    """Reject ASTs deeper than MAX_DEPTH, iteratively (no recursion on hostile input)."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _error(node, f"expression nested deeper than {MAX_DEPTH}")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class _Parser:
    def __init__(self, text: str):
        _check_bounds(text)
        self.text = text
        self.body: list[Statement] = []
        self.alias: dict[str, Operand] = {}   # program name -> current operand
        self.used_names: set[str] = set()
        self.temp_counter = 0

    # -- top level -------------------------------------------------------------------------
    def program(self) -> Program:
        try:
            tree = ast.parse(self.text, mode="exec")
        except SyntaxError as err:
            raise ProgramError(f"syntax error: {err.msg}", err.lineno or 0, err.offset or 0) from None
        except (RecursionError, MemoryError, ValueError) as err:
            raise ProgramError(f"program text too complex to parse ({type(err).__name__})") from None
        _check_depth(tree)
        self.used_names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        defs = tree.body
        if not defs:
            raise ProgramError("empty program: expected 'def NAME(params): ... return ...'")
        if len(defs) > 1 or not isinstance(defs[0], ast.FunctionDef):
            bad = defs[0] if not isinstance(defs[0], ast.FunctionDef) else defs[1]
            raise _error(bad, self._describe(bad, "a program is exactly one 'def'"))
        fn = defs[0]
        params = self._header(fn)
        for p in params:
            self.alias[p] = p
        *assigns, last = fn.body
        for stmt in assigns:
            self._statement(stmt)
            if len(self.body) > MAX_STATEMENTS:
                raise _error(stmt, f"more than {MAX_STATEMENTS} statements")
        outputs = self._return(last, params)
        program = Program(fn.name, params, tuple(self.body), outputs)
        try:
            return program.checked()
        except ProgramError as err:  # positions refer to canonical text; keep the message
            raise ProgramError(err.message, *_position(fn)) from None

    def _header(self, fn: ast.FunctionDef) -> tuple[str, ...]:
        a = fn.args
        if fn.decorator_list:
            raise _error(fn.decorator_list[0], "decorators are not allowed")
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
            raise _error(fn, "only plain positional parameters are allowed")
        if a.defaults or a.kw_defaults:
            raise _error(a.defaults[0] if a.defaults else fn, "parameter defaults are not allowed")
        if fn.returns is not None or any(arg.annotation for arg in a.args):
            raise _error(fn, "annotations are not allowed")
        params: list[str] = []
        for arg in a.args:
            if arg.arg in params:
                raise _error(arg, f"duplicate parameter {arg.arg!r}")
            if arg.arg in OPS:
                raise _error(arg, f"parameter {arg.arg!r} has the name of an op")
            params.append(arg.arg)
        return tuple(params)

    # -- statements ------------------------------------------------------------------------
    def _statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Return):
            raise _error(stmt, "'return' must be the last statement")
        if isinstance(stmt, ast.AugAssign):
            op = _BINOPS.get(type(stmt.op))
            if op is None or not isinstance(stmt.target, ast.Name):
                raise _error(stmt, self._describe(stmt.op, "unsupported augmented assignment"))
            target = self._target(stmt.target)
            left = self._name(stmt.target)
            self._assign(target, op, [left, self._operand(stmt.value)])
            return
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                raise _error(stmt, "assign to exactly one name ('x = ...')")
            target = self._target(stmt.targets[0])
            value = stmt.value
            if isinstance(value, (ast.Name, ast.Constant)) or _is_negative_literal(value):
                self.alias[target] = self._operand(value)
                return
            op, args = self._operation(value)
            self._assign(target, op, args)
            return
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            raise _error(stmt, "strings are not allowed (docstrings included; use # comments)")
        raise _error(stmt, self._describe(stmt, "only assignments and one final 'return' are allowed"))

    def _return(self, stmt: ast.stmt, params: tuple[str, ...]) -> tuple[str, ...]:
        if not isinstance(stmt, ast.Return):
            raise _error(stmt, "a program must end with 'return update, slot1, ...'")
        if stmt.value is None:
            raise _error(stmt, "'return' needs the update (and the new state slots)")
        values = stmt.value.elts if isinstance(stmt.value, ast.Tuple) else [stmt.value]
        slots = [p for p in params if p not in INPUTS]
        if len(values) != 1 + len(slots):
            raise _error(
                stmt, f"return has {len(values)} value(s); expected the update and "
                f"{len(slots)} state slot(s) ({', '.join(slots) or 'none'})")
        outputs = []
        for v in values:
            operand = self._operand(v)
            if not isinstance(operand, str):
                raise _error(v, "return values must be computed names, not constants")
            outputs.append(operand)
        return tuple(outputs)

    def _target(self, node: ast.Name) -> str:
        name = node.id
        if name in INPUTS:
            raise _error(node, f"cannot assign to the input {name!r}")
        if name in OPS:
            raise _error(node, f"cannot assign to {name!r}: it is the name of an op")
        return name

    def _assign(self, target: str, op: str, args: list[Operand]) -> None:
        self.body.append(Statement(target, op, tuple(args)))
        self.alias[target] = target

    # -- expressions -----------------------------------------------------------------------
    def _operand(self, node: ast.expr) -> Operand:
        """A name or constant standing for ``node``; nested operations become temporaries."""
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Constant):
            return _constant(node, node.value)
        if _is_negative_literal(node):
            return -_constant(node.operand, node.operand.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
            return self._operand(node.operand)
        op, args = self._operation(node)
        temp = self._temporary()
        self.body.append(Statement(temp, op, tuple(args)))
        return temp

    def _operation(self, node: ast.expr) -> tuple[str, list[Operand]]:
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
            if op is None:
                raise _error(node, self._describe(node.op, "unsupported operator"))
            return op, [self._operand(node.left), self._operand(node.right)]
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return "neg", [self._operand(node.operand)]
            if isinstance(node.op, ast.UAdd):
                return self._operation(node.operand)
            raise _error(node, "only unary '-' and '+' are allowed")
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
                raise _error(node, "only single comparisons > >= < <= == are allowed")
            return _COMPARE[type(node.ops[0])], [
                self._operand(node.left), self._operand(node.comparators[0])]
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _error(node, self._describe(node, "expression not allowed in a program"))

    def _call(self, node: ast.Call) -> tuple[str, list[Operand]]:
        if not isinstance(node.func, ast.Name):
            raise _error(node.func, self._describe(node.func, "only ops can be called, by name"))
        name = node.func.id
        if name not in OPS:
            raise _error(node.func, f"unknown op {name!r}")
        if node.keywords:
            raise _error(node.keywords[0], f"keyword arguments are not allowed (in {name})")
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise _error(a, "starred arguments are not allowed")
        arity = OPS[name].arity
        if len(node.args) != arity:
            raise _error(node, f"{name} takes {arity} operand(s), got {len(node.args)}")
        return name, [self._operand(a) for a in node.args]

    def _name(self, node: ast.Name) -> Operand:
        if node.id not in self.alias:
            if node.id in OPS:
                raise _error(node, f"op {node.id!r} used as a value; call it: {node.id}(...)")
            hint = " (add it to the parameters)" if node.id in INPUTS else ""
            raise _error(node, f"name {node.id!r} is used before it is assigned{hint}")
        return self.alias[node.id]

    def _temporary(self) -> str:
        while True:
            self.temp_counter += 1
            name = f"tmp{self.temp_counter}"
            if name not in self.used_names and name not in self.alias:
                return name

    @staticmethod
    def _describe(node: ast.AST, fallback: str) -> str:
        for kind, hint in _HINTS.items():
            if isinstance(node, kind):
                return hint
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            return "strings are not allowed"
        return f"{fallback} ({type(node).__name__})"


def _is_negative_literal(node: ast.expr) -> bool:
    return (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant))


def _constant(node: ast.AST, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        what = "strings are not allowed" if isinstance(value, (str, bytes)) else (
            f"constant {value!r} is not a number")
        raise _error(node, what)
    try:
        result = float(value)
    except OverflowError:
        raise _error(node, "integer constant too large") from None
    if not math.isfinite(result):
        raise _error(node, f"constant {value!r} is not finite")
    return result


__all__ = ["INFIX", "load", "parse"]
