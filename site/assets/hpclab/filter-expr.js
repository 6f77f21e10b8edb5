/* hpclab filter expressions for the Runs table (issue 17): a safe tokenizer, parser and
   evaluator (no eval, no Function: the CSP forbids them). Grammar:
     expr    := or
     or      := and ("or" and)*
     and     := not ("and" not)*
     not     := "not" not | cmp
     cmp     := value (op value)?     op: < <= > >= == != in contains
     value   := number | "string" | 'string' | tag:NAME | NAME | "(" expr ")"
   NAME may hold letters, digits, _ . / - (config paths, metric names).
   parse(text) -> {ast} or throws FilterError {message, pos};
   evaluate(ast, row) where row.get(name) -> value, row.tags -> array of strings. */
(function () {
  "use strict";

  function FilterError(message, pos) {
    this.name = "FilterError";
    this.message = message + " at position " + (pos + 1);
    this.pos = pos;
  }
  FilterError.prototype = Object.create(Error.prototype);

  var OPS = ["<=", ">=", "==", "!=", "<", ">"];
  var WORDS = { and: 1, or: 1, not: 1, in: 1, contains: 1 };

  function tokenize(text) {
    var out = [];
    var i = 0;
    while (i < text.length) {
      var c = text[i];
      if (/\s/.test(c)) { i += 1; continue; }
      if (c === "(" || c === ")") { out.push({ t: c, pos: i }); i += 1; continue; }
      var op = null;
      for (var k = 0; k < OPS.length; k += 1) {
        if (text.substr(i, OPS[k].length) === OPS[k]) { op = OPS[k]; break; }
      }
      if (op) { out.push({ t: "op", v: op, pos: i }); i += op.length; continue; }
      if (c === '"' || c === "'") {
        var j = i + 1;
        var s = "";
        while (j < text.length && text[j] !== c) {
          if (text[j] === "\\" && j + 1 < text.length) { j += 1; }
          s += text[j];
          j += 1;
        }
        if (j >= text.length) { throw new FilterError("unterminated string", i); }
        out.push({ t: "str", v: s, pos: i });
        i = j + 1;
        continue;
      }
      var m = /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(?![\w./])/.exec(text.slice(i));
      if (m) { out.push({ t: "num", v: Number(m[0]), pos: i }); i += m[0].length; continue; }
      m = /^[A-Za-z_][\w./:-]*/.exec(text.slice(i));
      if (m) {
        var w = m[0];
        if (Object.prototype.hasOwnProperty.call(WORDS, w.toLowerCase())) {
          var lw = w.toLowerCase();
          out.push({ t: lw === "in" || lw === "contains" ? "op" : lw, v: lw, pos: i });
        } else if (w.slice(0, 4) === "tag:") {
          out.push({ t: "tag", v: w.slice(4), pos: i });
        } else {
          out.push({ t: "name", v: w, pos: i });
        }
        i += w.length;
        continue;
      }
      throw new FilterError("unexpected character " + JSON.stringify(c), i);
    }
    out.push({ t: "end", pos: text.length });
    return out;
  }

  function parse(text) {
    var toks = tokenize(text);
    var p = 0;
    function peek() { return toks[p]; }
    function next() { p += 1; return toks[p - 1]; }
    function orE() {
      var left = andE();
      while (peek().t === "or") { next(); left = { k: "or", a: left, b: andE() }; }
      return left;
    }
    function andE() {
      var left = notE();
      while (peek().t === "and") { next(); left = { k: "and", a: left, b: notE() }; }
      return left;
    }
    function notE() {
      if (peek().t === "not") { next(); return { k: "not", a: notE() }; }
      return cmpE();
    }
    function cmpE() {
      var left = value();
      if (peek().t === "op") {
        var op = next().v;
        return { k: "cmp", op: op, a: left, b: value() };
      }
      return left;
    }
    function value() {
      var t = next();
      if (t.t === "num" || t.t === "str") { return { k: "lit", v: t.v }; }
      if (t.t === "name") { return { k: "name", v: t.v }; }
      if (t.t === "tag") { return { k: "tag", v: t.v }; }
      if (t.t === "(") {
        var e = orE();
        if (peek().t !== ")") { throw new FilterError("expected )", peek().pos); }
        next();
        return e;
      }
      throw new FilterError(t.t === "end" ? "unexpected end" : "unexpected " + (t.v || t.t), t.pos);
    }
    var ast = orE();
    if (peek().t !== "end") { throw new FilterError("unexpected " + (peek().v || peek().t), peek().pos); }
    return ast;
  }

  /* True when the text uses an operator, a keyword, a tag: or parentheses; otherwise the
     table keeps its plain free-text filter. */
  function isExpression(text) {
    var toks;
    try { toks = tokenize(text); } catch (e) { return /["'()<>=!]/.test(text); }
    return toks.some(function (t) {
      return t.t === "op" || t.t === "and" || t.t === "or" || t.t === "not" || t.t === "tag" || t.t === "(";
    });
  }

  function val(node, row) {
    if (node.k === "lit") { return node.v; }
    if (node.k === "name") { return row.get(node.v); }
    return truthy(node, row);
  }

  function compare(op, a, b) {
    if (op === "in" || op === "contains") {
      var hay = op === "in" ? b : a;
      var needle = op === "in" ? a : b;
      if (hay === null || hay === undefined || needle === null || needle === undefined) { return false; }
      if (Array.isArray(hay)) { return hay.map(String).indexOf(String(needle)) >= 0; }
      return String(hay).toLowerCase().indexOf(String(needle).toLowerCase()) >= 0;
    }
    if (a === null || a === undefined || b === null || b === undefined) { return op === "!=" ? a !== b : false; }
    if (typeof a === "number" || typeof b === "number") {
      var x = Number(a);
      var y = Number(b);
      if (Number.isNaN(x) || Number.isNaN(y)) { return op === "!=" ? String(a) !== String(b) : op === "==" ? String(a) === String(b) : false; }
      a = x; b = y;
    } else { a = String(a); b = String(b); }
    switch (op) {
      case "<": return a < b;
      case "<=": return a <= b;
      case ">": return a > b;
      case ">=": return a >= b;
      case "==": return a === b;
      default: return a !== b;
    }
  }

  function truthy(node, row) {
    switch (node.k) {
      case "or": return truthy(node.a, row) || truthy(node.b, row);
      case "and": return truthy(node.a, row) && truthy(node.b, row);
      case "not": return !truthy(node.a, row);
      case "tag": return (row.tags || []).indexOf(node.v) >= 0;
      case "cmp": return compare(node.op, val(node.a, row), val(node.b, row));
      case "name": { var v = row.get(node.v); return v !== null && v !== undefined && v !== false && v !== 0 && v !== ""; }
      default: return Boolean(node.v);
    }
  }

  window.hpclabFilterExpr = { parse: parse, evaluate: truthy, isExpression: isExpression, FilterError: FilterError };
})();
