#include "tokenizer/jinja/parser.h"

#include <algorithm>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/errors.h"

namespace seek::tokenizer::jinja {
namespace {

using T = Token::Type;

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const Options& opt) : toks_(tokens), opt_(opt) {}

  Body parse_template() {
    std::string end;
    Body body = parse_body({}, end);
    return body;
  }

 private:
  // ---- token stream ----
  const Token& cur() const { return toks_[i_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  const Token& next() { return toks_[i_ < toks_.size() - 1 ? i_++ : i_]; }
  bool is_op(std::string_view op) const { return cur().type == T::Op && cur().text == op; }
  bool is_name(std::string_view n) const { return cur().type == T::Name && cur().text == n; }
  bool skip_op(std::string_view op) { return is_op(op) ? (next(), true) : false; }
  bool skip_name(std::string_view n) { return is_name(n) ? (next(), true) : false; }
  [[noreturn]] void error(const Token& t, const std::string& msg) const { fail_at(opt_.name, t.pos, msg); }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case T::Eof: return "end of template";
      case T::BlockEnd: return "'%}'";
      case T::VarEnd: return "'}}'";
      case T::Text: return "template text";
      case T::String: return "string literal";
      default: return "'" + t.text + "'";
    }
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) error(cur(), "expected '" + std::string(op) + "', got " + describe(cur()));
  }
  void expect(T type, const char* what) {
    if (cur().type != type) error(cur(), std::string("expected ") + what + ", got " + describe(cur()));
    next();
  }
  std::string expect_identifier() {
    if (cur().type != T::Name) error(cur(), "expected a name, got " + describe(cur()));
    return next().text;
  }

  static ExprPtr node(Expr::Kind k, Pos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->pos = pos;
    return e;
  }
  static ExprPtr node(Expr::Kind k, Pos pos, ExprPtr a, ExprPtr b = nullptr) {
    auto e = node(k, pos);
    e->args.push_back(std::move(a));
    if (b) e->args.push_back(std::move(b));
    return e;
  }

  // ---- statements ----
  // Parses until one of `ends` opens a block tag; consumes "{% end_tag" and reports it in `found`.
  Body parse_body(std::initializer_list<std::string_view> ends, std::string& found) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == T::Eof) {
        if (ends.size()) error(t, "unexpected end of template, expected '" + std::string(*(ends.end() - 1)) + "'");
        return body;
      }
      if (t.type == T::Text) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Text;
        s->pos = t.pos;
        s->text = next().text;
        body.push_back(std::move(s));
      } else if (t.type == T::VarBegin) {
        next();
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::Output;
        s->pos = t.pos;
        s->expr = parse_tuple();
        expect(T::VarEnd, "'}}'");
        body.push_back(std::move(s));
      } else if (t.type == T::BlockBegin) {
        next();
        const Token& tag = cur();
        if (tag.type != T::Name) error(tag, "expected a tag name, got " + describe(tag));
        if (std::find(ends.begin(), ends.end(), tag.text) != ends.end()) {
          found = next().text;
          return body;
        }
        parse_statement(body);
      } else {
        error(t, "unexpected " + describe(t));
      }
    }
  }

  std::unique_ptr<Stmt> stmt(Stmt::Kind k, Pos pos) {
    auto s = std::make_unique<Stmt>();
    s->kind = k;
    s->pos = pos;
    return s;
  }

  // After the body of an if or for: its `{% else %}` body up to `end` when `found` (the tag that
  // ended the body) is "else", then the closing tag's `%}`.
  void parse_else(Stmt& s, const std::string& found, std::string_view end) {
    std::string end_found;
    if (found == "else") {
      expect(T::BlockEnd, "'%}'");
      s.else_body = parse_body({end}, end_found);
    }
    expect(T::BlockEnd, "'%}'");
  }

  void parse_statement(Body& body) {
    DepthGuard guard(*this);
    const Token& tag = next();
    const std::string& name = tag.text;
    std::string found;
    if (name == "if") {
      auto s = stmt(Stmt::Kind::If, tag.pos);
      std::string kw = "if";
      while (kw == "if" || kw == "elif") {
        ExprPtr cond = parse_expression();
        expect(T::BlockEnd, "'%}'");
        Body b = parse_body({"elif", "else", "endif"}, kw);
        s->branches.emplace_back(std::move(cond), std::move(b));
      }
      parse_else(*s, kw, "endif");
      body.push_back(std::move(s));
    } else if (name == "for") {
      auto s = stmt(Stmt::Kind::For, tag.pos);
      s->targets = parse_targets();
      if (!skip_name("in")) error(cur(), "expected 'in', got " + describe(cur()));
      s->expr = parse_expression(/*with_cond=*/false);
      if (skip_name("if")) s->filter = parse_expression();
      if (is_name("recursive")) error(cur(), "recursive loops are not supported");
      expect(T::BlockEnd, "'%}'");
      ++loop_depth_;
      s->body = parse_body({"else", "endfor"}, found);
      --loop_depth_;
      parse_else(*s, found, "endfor");
      body.push_back(std::move(s));
    } else if (name == "set") {
      auto s = stmt(Stmt::Kind::Set, tag.pos);
      if (cur().type == T::Name && peek().type == T::Op && peek().text == ".") {
        s->object = node(Expr::Kind::Name, cur().pos);
        s->object->name = next().text;
        next();  // '.'
        s->name = expect_identifier();
      } else {
        s->targets = parse_targets();
      }
      if (skip_op("=")) {
        s->expr = parse_tuple();
        expect(T::BlockEnd, "'%}'");
      } else {
        if (s->object || s->targets.size() != 1) error(cur(), "expected '='");
        expect(T::BlockEnd, "'%}'");
        s->kind = Stmt::Kind::SetBlock;
        s->body = parse_body({"endset"}, found);
        expect(T::BlockEnd, "'%}'");
      }
      body.push_back(std::move(s));
    } else if (name == "macro") {
      auto s = stmt(Stmt::Kind::Macro, tag.pos);
      s->name = expect_identifier();
      expect_op("(");
      while (!is_op(")")) {
        if (!s->params.empty()) expect_op(",");
        if (is_op(")")) break;
        s->params.push_back(expect_identifier());
        s->defaults.push_back(skip_op("=") ? parse_expression() : nullptr);
      }
      expect_op(")");
      expect(T::BlockEnd, "'%}'");
      s->body = parse_body({"endmacro"}, found);
      expect(T::BlockEnd, "'%}'");
      body.push_back(std::move(s));
    } else if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) error(tag, "'" + name + "' outside of a loop");
      expect(T::BlockEnd, "'%}'");
      body.push_back(stmt(name == "break" ? Stmt::Kind::Break : Stmt::Kind::Continue, tag.pos));
    } else if (name == "generation") {
      // transformers' AssistantTracker marks assistant text for masks; rendering is unchanged.
      expect(T::BlockEnd, "'%}'");
      Body inner = parse_body({"endgeneration"}, found);
      expect(T::BlockEnd, "'%}'");
      for (auto& st : inner) body.push_back(std::move(st));
    } else {
      error(tag, "unknown or unsupported tag '" + name + "'");
    }
  }

  // `x`, `a, b` or `(a, b)`: names to assign in for/set.
  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    do {
      names.push_back(expect_identifier());
    } while (skip_op(",") && cur().type == T::Name);
    if (paren) expect_op(")");
    return names;
  }

  // ---- expressions ----
  // An expression, or a tuple of them without parentheses (`{% set a = 1, 2 %}`).
  ExprPtr parse_tuple() {
    Pos pos = cur().pos;
    ExprPtr first = parse_expression();
    if (!is_op(",")) return first;
    auto t = node(Expr::Kind::Tuple, pos);
    t->args.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().type == T::BlockEnd || cur().type == T::VarEnd) break;
      t->args.push_back(parse_expression());
    }
    return t;
  }

  // Nesting is bounded so that a hostile template is a syntax error, not a stack overflow.
  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxDepth) p.error(p.cur(), "template nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
  };
  static constexpr int kMaxDepth = 200;

  ExprPtr parse_expression(bool with_cond = true) {
    DepthGuard guard(*this);
    ExprPtr e = parse_or();
    while (with_cond && is_name("if")) {
      Pos pos = next().pos;
      auto c = node(Expr::Kind::Cond, pos);
      c->args.push_back(std::move(e));
      c->args.push_back(parse_or());
      c->args.push_back(skip_name("else") ? parse_expression() : nullptr);
      e = std::move(c);
    }
    return e;
  }

  // `operand (keyword operand)*`, left-associative: `or` over `and` over `not`.
  ExprPtr parse_keyword_chain(const char* keyword, Expr::Kind kind, ExprPtr (Parser::*operand)()) {
    ExprPtr e = (this->*operand)();
    while (is_name(keyword)) {
      Pos pos = next().pos;
      e = node(kind, pos, std::move(e), (this->*operand)());
    }
    return e;
  }
  ExprPtr parse_or() { return parse_keyword_chain("or", Expr::Kind::Or, &Parser::parse_and); }
  ExprPtr parse_and() { return parse_keyword_chain("and", Expr::Kind::And, &Parser::parse_not); }
  ExprPtr parse_not() {
    DepthGuard guard(*this);
    if (is_name("not")) {
      Pos pos = next().pos;
      return node(Expr::Kind::Not, pos, parse_not());
    }
    return parse_compare();
  }
  ExprPtr parse_compare() {
    Pos pos = cur().pos;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == T::Op && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                  cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && peek().type == T::Name && peek().text == "in") {
        next();
        next();
        op = "notin";
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(Expr::Kind::Compare, pos);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }
  ExprPtr parse_binary_level(int level) {
    // level 0: + -   1: ~   2: * / // %   3: **
    static const std::vector<std::vector<std::string_view>> kOps = {{"+", "-"}, {"~"}, {"*", "/", "//", "%"}, {"**"}};
    auto sub = [&]() { return level == 3 ? parse_unary() : parse_binary_level(level + 1); };
    ExprPtr e = sub();
    while (cur().type == T::Op &&
           std::find(kOps[size_t(level)].begin(), kOps[size_t(level)].end(), cur().text) != kOps[size_t(level)].end()) {
      const Token& op = next();
      auto b = node(Expr::Kind::Binary, op.pos, std::move(e), sub());
      b->name = op.text;
      e = std::move(b);
    }
    return e;
  }
  ExprPtr parse_math1() { return parse_binary_level(0); }

  ExprPtr parse_unary(bool with_filter = true) {
    DepthGuard guard(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Token& op = next();
      e = node(op.text == "-" ? Expr::Kind::Neg : Expr::Kind::Plus, op.pos, parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    return with_filter ? parse_filters(std::move(e)) : std::move(e);
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    if (t.type == T::Name) {
      next();
      if (t.text == "true" || t.text == "True") return literal(t.pos, true);
      if (t.text == "false" || t.text == "False") return literal(t.pos, false);
      if (t.text == "none" || t.text == "None") return literal(t.pos, None{});
      auto e = node(Expr::Kind::Name, t.pos);
      e->name = t.text;
      return e;
    }
    if (t.type == T::String) {
      std::string s = next().text;
      while (cur().type == T::String) s += next().text;  // adjacent literals concatenate
      return literal(t.pos, std::move(s));
    }
    if (t.type == T::Int) return literal(t.pos, next().int_value);
    if (t.type == T::Float) return literal(t.pos, next().float_value);
    if (is_op("(")) {
      next();
      if (skip_op(")")) return node(Expr::Kind::Tuple, t.pos);
      ExprPtr first = parse_expression();
      if (skip_op(")")) return first;
      auto tup = node(Expr::Kind::Tuple, t.pos);
      tup->args.push_back(std::move(first));
      while (skip_op(",") && !is_op(")")) tup->args.push_back(parse_expression());
      expect_op(")");
      return tup;
    }
    if (is_op("[")) return parse_display(Expr::Kind::List, t.pos, "]", false);
    if (is_op("{")) return parse_display(Expr::Kind::Dict, t.pos, "}", true);
    error(t, "unexpected " + describe(t));
  }

  // A list `[a, b]` or dict `{k: v}` from its opening bracket on; a trailing comma is allowed.
  // A dict's args alternate key, value.
  ExprPtr parse_display(Expr::Kind kind, Pos pos, std::string_view close, bool pairs) {
    next();
    auto e = node(kind, pos);
    while (!is_op(close)) {
      if (!e->args.empty()) expect_op(",");
      if (is_op(close)) break;
      e->args.push_back(parse_expression());
      if (pairs) {
        expect_op(":");
        e->args.push_back(parse_expression());
      }
    }
    expect_op(close);
    return e;
  }

  static ExprPtr literal(Pos pos, Value v) {
    auto e = node(Expr::Kind::Literal, pos);
    e->value = std::move(v);
    return e;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        next();
        Pos pos = e->pos;  // errors point at the start of `x.y`, not at the dot
        auto a = node(Expr::Kind::Attr, pos, std::move(e));
        if (cur().type == T::Int) {  // x.0 is x[0]
          a->kind = Expr::Kind::Item;
          a->args.push_back(literal(cur().pos, next().int_value));
        } else {
          a->name = expect_identifier();
        }
        e = std::move(a);
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr target) {
    next();  // '['
    Pos pos = target->pos;
    ExprPtr parts[3];
    int colons = 0;
    if (!is_op(":")) parts[0] = parse_expression();
    while (colons < 2 && skip_op(":")) {
      ++colons;
      if (!is_op(":") && !is_op("]")) parts[colons] = parse_expression();
    }
    expect_op("]");
    if (colons == 0) return node(Expr::Kind::Item, pos, std::move(target), std::move(parts[0]));
    auto s = node(Expr::Kind::Slice, pos, std::move(target));
    for (auto& p : parts) s->args.push_back(std::move(p));
    return s;
  }

  // Appends "(a, b, k=v)" to e->args (after the callee/target in args[0]) and e->kwargs.
  void parse_args(Expr& e) {
    expect_op("(");
    for (bool first = true; !is_op(")"); first = false) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (cur().type == T::Name && peek().type == T::Op && peek().text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!e.kwargs.empty()) error(cur(), "positional argument after keyword argument");
        e.args.push_back(parse_expression());
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    Pos pos = callee->pos;  // errors inside the call point at what was called
    auto c = node(Expr::Kind::Call, pos, std::move(callee));
    parse_args(*c);
    return c;
  }

  ExprPtr parse_filters(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        next();
        const Token& name = cur();
        auto f = node(Expr::Kind::Filter, name.pos, std::move(e));
        f->name = expect_identifier();
        if (!known_filter(f->name)) error(name, "no filter named '" + f->name + "'");
        if (is_op("(")) parse_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        next();
        bool negated = skip_name("not");
        const Token& name = cur();
        auto t = node(Expr::Kind::Test, name.pos, std::move(e));
        t->negated = negated;
        t->name = expect_identifier();  // `none`, `true`, `false` lex as names, as here they are
        if (!known_test(t->name)) error(name, "no test named '" + t->name + "'");
        if (is_op("(")) {
          parse_args(*t);
        } else if ((cur().type == T::Name || cur().type == T::String || cur().type == T::Int ||
                    cur().type == T::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and") && !is_name("is")) {
          t->args.push_back(parse_postfix(parse_primary()));  // `x is divisibleby 3`
        }
        e = std::move(t);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  const std::vector<Token>& toks_;
  const Options& opt_;
  size_t i_ = 0;
  int loop_depth_ = 0;
  int depth_ = 0;
};

}  // namespace

Body parse(const std::vector<Token>& tokens, const Options& options) { return Parser(tokens, options).parse_template(); }

}  // namespace seek::tokenizer::jinja
