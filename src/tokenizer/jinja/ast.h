// Syntax tree of a parsed template. One node type for expressions and one for statements; the
// meaning of the child slots depends on the kind (listed next to each kind).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace seek::tokenizer::jinja {

struct Pos {
  int line = 1, col = 1;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,  // value
    Name,     // name
    List,     // args: elements
    Tuple,    // args: elements (a list at run time)
    Dict,     // args: key0, value0, key1, value1, ...
    Attr,     // args[0].name
    Item,     // args[0][args[1]]
    Slice,    // args[0][args[1]:args[2]:args[3]], absent parts are null
    Call,     // args[0](args[1..], kwargs)
    Filter,   // args[0] | name(args[1..], kwargs)
    Test,     // args[0] is [not] name(args[1..])
    Not,      // not args[0]
    Neg,      // -args[0]
    Plus,     // +args[0]
    Binary,   // args[0] name args[1], name in + - * / // % ** ~
    Compare,  // args[0] ops[0] args[1] ops[1] args[2] ..., ops in == != < <= > >= in notin
    And,      // args[0] and args[1]
    Or,       // args[0] or args[1]
    Cond,     // args[0] if args[1] else args[2] (args[2] may be null)
  };
  Kind kind;
  Pos pos;
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;  // Test: "is not"
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Kind {
    Text,      // text
    Output,    // {{ expr }}
    If,        // branches (cond, body) in order, then else_body
    For,       // for targets in expr [if filter]: body [else: else_body]
    Set,       // set targets = expr, or set object.attr = expr (object non-null)
    SetBlock,  // set targets[0]: body captured as a string
    Macro,     // macro name(params = defaults): body
    Break,
    Continue,
  };
  Kind kind;
  Pos pos;
  std::string text;
  ExprPtr expr, filter, object;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  std::vector<std::string> targets;
  std::string name;  // Macro name, or the attribute for `set object.attr`
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // parallel to params; null where there is no default
};

}  // namespace seek::tokenizer::jinja
