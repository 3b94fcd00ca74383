// The tree-walking interpreter behind Template::render.
//
// Scoping follows Jinja: a for-loop body gets a fresh scope on every iteration, so a `set` inside
// a loop is gone after it (hence namespace()); `if` bodies share the enclosing scope; a macro
// sees the template's top-level variables and its own parameters, not its caller's locals.
#include "tokenizer/jinja/template.h"

#include <cmath>

#include "core/io.h"

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/errors.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/parser.h"

namespace seek::tokenizer::jinja {

struct Template::Parsed {
  Body body;
  std::string name;
};

Template Template::parse(const std::string& source, const Options& options) {
  if (!valid_utf8(source)) fail("{}: template is not valid UTF-8", options.name);
  auto p = std::make_shared<Parsed>();
  p->name = options.name;
  p->body = jinja::parse(lex(normalize_newlines(source), options), options);
  Template t;
  t.parsed_ = std::move(p);
  return t;
}

namespace {

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") return a.to_str() + b.to_str();
  if (a.is_undefined()) throw Failure(a.undefined().what);
  if (b.is_undefined()) throw Failure(b.undefined().what);
  auto type_error = [&]() -> Failure {
    return Failure("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
  };
  const bool ints = a.is_int() && b.is_int();
  if (a.is_number() && b.is_number()) {
    if (op == "+") return ints ? Value(a.as_int() + b.as_int()) : Value(a.as_double() + b.as_double());
    if (op == "-") return ints ? Value(a.as_int() - b.as_int()) : Value(a.as_double() - b.as_double());
    if (op == "*") return ints ? Value(a.as_int() * b.as_int()) : Value(a.as_double() * b.as_double());
    if (b.as_double() == 0 && (op == "/" || op == "//" || op == "%")) throw Failure("division by zero");
    if (op == "/") return a.as_double() / b.as_double();
    if (op == "//") {
      if (!ints) return std::floor(a.as_double() / b.as_double());
      int64_t q = a.as_int() / b.as_int();
      if ((a.as_int() % b.as_int() != 0) && ((a.as_int() < 0) != (b.as_int() < 0))) --q;  // floor, not trunc
      return q;
    }
    if (op == "%") {
      if (!ints) {
        double r = std::fmod(a.as_double(), b.as_double());
        return (r != 0 && ((r < 0) != (b.as_double() < 0))) ? r + b.as_double() : r;
      }
      int64_t r = a.as_int() % b.as_int();
      return (r != 0 && ((r < 0) != (b.as_int() < 0))) ? r + b.as_int() : r;
    }
    if (op == "**") {
      if (ints && b.as_int() >= 0) {
        int64_t r = 1;
        for (int64_t i = 0; i < b.as_int(); ++i) r *= a.as_int();
        return r;
      }
      return std::pow(a.as_double(), b.as_double());
    }
  }
  if (op == "+" && a.is_string() && b.is_string()) return a.str() + b.str();
  if (op == "+" && a.is_list() && b.is_list()) {
    List out = a.list();
    out.insert(out.end(), b.list().begin(), b.list().end());
    return out;
  }
  const bool a_seq = a.is_string() || a.is_list(), b_seq = b.is_string() || b.is_list();
  if (op == "*" && ((a_seq && b.is_int()) || (a.is_int() && b_seq))) {
    const Value& seq = a.is_int() ? b : a;
    int64_t n = a.is_int() ? a.as_int() : b.as_int();
    if (seq.is_string()) {
      std::string out;
      for (int64_t i = 0; i < n; ++i) out += seq.str();
      return out;
    }
    List out;
    for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.list().begin(), seq.list().end());
    return out;
  }
  throw type_error();
}

bool compare(const std::string& op, const Value& a, const Value& b);

bool less_than(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_int() && b.is_int()) return a.as_int() < b.as_int();
    return a.as_double() < b.as_double();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 order is code point order
  if (a.is_list() && b.is_list()) {
    const List &x = a.list(), &y = b.list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i)
      if (!equals(x[i], y[i])) return less_than(x[i], y[i]);
    return x.size() < y.size();
  }
  if (a.is_undefined()) throw Failure(a.undefined().what);
  if (b.is_undefined()) throw Failure(b.undefined().what);
  throw Failure(std::string("'<' not supported between instances of '") + a.type_name() + "' and '" + b.type_name() + "'");
}

bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  if (op == "in") return contains(b, a);
  if (op == "notin") return !contains(b, a);
  if (op == "<") return less_than(a, b);
  if (op == ">") return less_than(b, a);
  if (op == "<=") return !less_than(b, a);
  return !less_than(a, b);  // ">="
}

class Interpreter {
 public:
  enum class Flow { Normal, Break, Continue };

  Interpreter(const std::string& name, const Map& globals) : name_(name), globals_(globals) { scopes_.emplace_back(); }

  Flow exec(const Body& body, std::string& out) {
    for (const auto& s : body) {
      Flow f = exec(*s, out);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

 private:
  Flow exec(const Stmt& s, std::string& out) {
    try {
      return exec_inner(s, out);
    } catch (const Failure& f) {
      fail_at(name_, s.pos, f.what());
    }
  }

  Flow exec_inner(const Stmt& s, std::string& out) {
    switch (s.kind) {
      case Stmt::Kind::Text: out += s.text; break;
      case Stmt::Kind::Output: out += eval(*s.expr).to_str(); break;
      case Stmt::Kind::If:
        for (const auto& [cond, body] : s.branches)
          if (eval(*cond).truthy()) return exec(body, out);
        return exec(s.else_body, out);
      case Stmt::Kind::For: return exec_for(s, out);
      case Stmt::Kind::Set: {
        Value v = eval(*s.expr);
        if (s.object) {
          Value target = eval(*s.object);
          if (!target.is_namespace()) throw Failure("cannot assign attribute on non-namespace object");
          target.ns().set(s.name, std::move(v));
        } else {
          assign(s.targets, v, scopes_.back());
        }
        break;
      }
      case Stmt::Kind::SetBlock: {
        std::string captured;
        exec(s.body, captured);
        scopes_.back().set(s.targets[0], std::move(captured));
        break;
      }
      case Stmt::Kind::Macro: scopes_.back().set(s.name, Function{s.name, &s}); break;
      case Stmt::Kind::Break: return Flow::Break;
      case Stmt::Kind::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  }

  static void assign(const std::vector<std::string>& targets, const Value& v, Map& scope) {
    if (targets.size() == 1) {
      scope.set(targets[0], v);
      return;
    }
    std::vector<Value> items = iterate(v);
    if (items.size() != targets.size())
      throw Failure(items.size() > targets.size() ? "too many values to unpack" : "not enough values to unpack");
    for (size_t i = 0; i < targets.size(); ++i) scope.set(targets[i], items[i]);
  }

  Flow exec_for(const Stmt& s, std::string& out) {
    std::vector<Value> items = iterate(eval(*s.expr));
    if (s.filter) {  // `for x in xs if cond`: loop.* then count the kept items only
      std::vector<Value> kept;
      for (Value& item : items) {
        scopes_.emplace_back();
        assign(s.targets, item, scopes_.back());
        bool keep = eval(*s.filter).truthy();
        scopes_.pop_back();
        if (keep) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec(s.else_body, out);
    const int64_t n = int64_t(items.size());
    for (int64_t i = 0; i < n; ++i) {
      Map loop;
      loop.items = {{"index0", i},          {"index", i + 1},     {"revindex", n - i},
                    {"revindex0", n - i - 1}, {"first", i == 0},    {"last", i == n - 1},
                    {"length", n}};
      if (i > 0) loop.set("previtem", items[size_t(i - 1)]);
      if (i + 1 < n) loop.set("nextitem", items[size_t(i + 1)]);
      scopes_.emplace_back();
      scopes_.back().set("loop", std::move(loop));
      assign(s.targets, items[size_t(i)], scopes_.back());
      Flow f = exec(s.body, out);
      scopes_.pop_back();
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
      if (const Value* v = it->find(name)) return *v;
    if (const Value* v = globals_.find(name)) return *v;
    if (is_global_function(name)) return Function{name};
    return Undefined{"'" + name + "' is undefined"};
  }

  Value eval(const Expr& e) {
    try {
      return eval_inner(e);
    } catch (const Failure& f) {
      fail_at(name_, e.pos, f.what());
    }
  }

  Args eval_args(const Expr& e) {
    Args a;
    for (size_t i = 1; i < e.args.size(); ++i) a.pos.push_back(eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) a.kw.emplace_back(k, eval(*v));
    return a;
  }

  Value eval_inner(const Expr& e) {
    using K = Expr::Kind;
    auto arg = [&](size_t i) { return eval(*e.args[i]); };
    switch (e.kind) {
      case K::Literal: return e.value;
      case K::Name: return lookup(e.name);
      case K::List:
      case K::Tuple: {
        List l;
        for (const auto& x : e.args) l.push_back(eval(*x));
        return e.kind == K::Tuple ? Value::tuple(std::move(l)) : Value(std::move(l));
      }
      case K::Dict: {
        Map m;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          Value k = arg(i);
          if (!k.is_string()) throw Failure("dict keys must be strings");
          m.set(k.str(), arg(i + 1));
        }
        return m;
      }
      case K::Attr: return get_attr(arg(0), e.name);
      case K::Item: return get_item(arg(0), arg(1));
      case K::Slice: {
        auto part = [&](size_t i) { return e.args[i] ? eval(*e.args[i]) : Value(None{}); };
        return get_slice(arg(0), part(1), part(2), part(3));
      }
      case K::Call: return call(e);
      case K::Filter: return apply_filter(e.name, arg(0), eval_args(e));
      case K::Test: return apply_test(e.name, arg(0), eval_args(e)) != e.negated;
      case K::Not: return !arg(0).truthy();
      case K::Neg:
      case K::Plus: {
        Value v = arg(0);
        if (!v.is_number()) throw Failure(std::string("bad operand type for unary ") + (e.kind == K::Neg ? "-" : "+") + ": '" + v.type_name() + "'");
        if (e.kind == K::Plus) return v;
        return v.is_float() ? Value(-v.as_double()) : Value(-v.as_int());
      }
      case K::Binary: return arithmetic(e.name, arg(0), arg(1));
      case K::Compare: {
        Value left = arg(0);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = arg(i + 1);
          if (!compare(e.ops[i], left, right)) return false;
          left = std::move(right);
        }
        return true;
      }
      case K::And: {  // Python returns the deciding operand, not a bool
        Value l = arg(0);
        return l.truthy() ? arg(1) : l;
      }
      case K::Or: {
        Value l = arg(0);
        return l.truthy() ? l : arg(1);
      }
      case K::Cond:
        if (arg(1).truthy()) return arg(0);
        return e.args[2] ? arg(2) : Value(Undefined{"the inline if expression had no else"});
    }
    return Value();
  }

  Value call(const Expr& e) {
    const Expr& callee = *e.args[0];
    if (callee.kind == Expr::Kind::Attr) {  // obj.method(...)
      Value obj = eval(*callee.args[0]);
      Value member = obj.is_map() || obj.is_namespace() ? get_attr(obj, callee.name) : Value();
      if (!member.is_function()) return call_method(obj, callee.name, eval_args(e));
      return call_function(member.function(), eval_args(e));
    }
    Value f = eval(callee);
    if (f.is_undefined()) throw Failure(f.undefined().what);
    if (!f.is_function()) throw Failure(std::string("'") + f.type_name() + "' object is not callable");
    return call_function(f.function(), eval_args(e));
  }

  Value call_function(const Function& f, const Args& args) {
    if (!f.macro) return call_global(f.name, args);
    const Stmt& m = *f.macro;
    if (depth_ >= 64) throw Failure("macro recursion too deep");
    if (args.pos.size() > m.params.size()) throw Failure("macro '" + m.name + "' takes " + std::to_string(m.params.size()) + " arguments");
    for (const auto& [k, v] : args.kw)
      if (std::find(m.params.begin(), m.params.end(), k) == m.params.end())
        throw Failure("macro '" + m.name + "' has no parameter '" + k + "'");
    Map params;
    for (size_t i = 0; i < m.params.size(); ++i) {
      const Value* given = args.get(i, m.params[i]);
      params.set(m.params[i], given ? *given : m.defaults[i] ? eval(*m.defaults[i]) : Value(Undefined{"'" + m.params[i] + "' is undefined"}));
    }
    // The macro runs with the top-level scope and its parameters only.
    std::vector<Map> saved;
    saved.swap(scopes_);
    scopes_.push_back(saved.front());
    scopes_.push_back(std::move(params));
    ++depth_;
    std::string out;
    try {
      exec(m.body, out);
    } catch (...) {
      --depth_;
      scopes_.swap(saved);
      throw;
    }
    --depth_;
    scopes_.swap(saved);
    return out;
  }

  const std::string& name_;
  const Map& globals_;
  std::vector<Map> scopes_;
  int depth_ = 0;

};

}  // namespace

std::string Template::render(const Map& variables) const {
  std::string out;
  Interpreter(parsed_->name, variables).exec(parsed_->body, out);
  return out;
}

}  // namespace seek::tokenizer::jinja
