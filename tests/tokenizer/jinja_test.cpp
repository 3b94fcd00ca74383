// The Jinja interpreter, feature by feature. Each expected string is what Jinja2 3.1 (configured
// like transformers: trim_blocks, lstrip_blocks) produces, worked out from its documented
// semantics and Python's str()/repr()/json.dumps().
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja/template.h"

namespace seek::tokenizer::jinja {
namespace {

std::string render(const std::string& src, const nlohmann::ordered_json& vars = nlohmann::ordered_json::object()) {
  Map m = Value::from_json(vars).map();
  return Template::parse(src).render(m);
}

std::string error_of(const std::string& src, const nlohmann::ordered_json& vars = nlohmann::ordered_json::object()) {
  try {
    render(src, vars);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Jinja, LiteralsAndArithmetic) {
  EXPECT_EQ(render("{{ 'a' + \"b\" ~ 1 }}"), "ab1");
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 4 / 2 }}"),
            "3 -4 1 2 1024 3.5 2.0");
  EXPECT_EQ(render("{{ 'ab' * 2 }} {{ [1] + [2] }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }}"), "abab [1, 2] 7 9");
  EXPECT_EQ(render("{{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.5e-5 }} {{ 3.0 }} {{ 100000.0 }} {{ 1_000 }}"),
            "0.30000000000000004 1e+20 1.5e-05 3.0 100000.0 1000");
}

TEST(Jinja, PythonStringForms) {
  EXPECT_EQ(render("{{ none }} {{ true }} {{ False }} {{ [1, 'a', none] }} {{ {'k': 1.5, 'q': \"it's\"} }}"),
            "None True False [1, 'a', None] {'k': 1.5, 'q': \"it's\"}");
  EXPECT_EQ(render("{{ 'a\\nb' }}|{{ \"\\u00e9\\x41\\t\" }}|{{ 'it\\'s' }}|{{ 'a' 'b' }}"), "a\nb|\xC3\xA9" "A\t|it's|ab");
}

TEST(Jinja, UndefinedIsEmptyAndFalsyButNotUsable) {
  EXPECT_EQ(render("[{{ missing }}]{% if missing %}x{% else %}y{% endif %}{{ missing is defined }}"), "[]yFalse");
  EXPECT_EQ(render("{% for x in missing %}x{% endfor %}{{ missing|length }}{{ missing|default('d') }}"), "0d");
  EXPECT_NE(error_of("{{ missing.attr }}").find("template:1:4: 'missing' is undefined"), std::string::npos);
  EXPECT_NE(error_of("{{ 'a' + missing }}").find("'missing' is undefined"), std::string::npos);
  EXPECT_NE(error_of("{{ 'a' + none }}").find("unsupported operand type(s) for +: 'str' and 'NoneType'"), std::string::npos);
}

TEST(Jinja, ForLoops) {
  EXPECT_EQ(render("{% for x in ['a','b','c'] %}{{ loop.index0 }}{{ loop.index }}{{ x }}"
                   "{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %}{{ loop.length }}|{% endfor %}"),
            "01aF3|12b3|23cL3|");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in range(10) if x % 3 == 0 %}{{ x }}{{ ',' if not loop.last }}{% endfor %}"), "0,3,6,9");
  EXPECT_EQ(render("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}"
                   "{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
            "0134");
  EXPECT_EQ(render("{% for x in [1,2,3] %}{{ loop.previtem|default('-') }}{{ loop.nextitem|default('-') }} {% endfor %}"),
            "-2 13 2- ");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}",
                   {{"d", {{"b", 1}, {"a", 2}}}}),
            "b=1;a=2;ba");
  EXPECT_EQ(render("{% for c in 'héj' %}[{{ c }}]{% endfor %}"), "[h][\xC3\xA9][j]");
}

TEST(Jinja, ScopingAndNamespace) {
  // A loop body gets a fresh scope each iteration: `set` inside it is invisible outside.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in range(2) %}{% set x = x + 10 %}{{ x }},{% endfor %}{{ x }}"), "11,11,1");
  EXPECT_EQ(render("{% set ns = namespace(n=0, s='') %}{% for i in range(3) %}{% set ns.n = ns.n + i %}"
                   "{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }}"),
            "3 012");
  EXPECT_EQ(render("{% if true %}{% set y = 'set in if' %}{% endif %}{{ y }}"), "set in if");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (3, 4) %}{{ t[1] }}"), "124");
  EXPECT_EQ(render("{% set x %}a{{ 1 }}b{% endset %}[{{ x }}]"), "[a1b]");
  EXPECT_NE(error_of("{% set s = 'x' %}{% set s.attr = 1 %}").find("non-namespace"), std::string::npos);
}

TEST(Jinja, WhitespaceControl) {
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}  c"), "abc");
  EXPECT_EQ(render("a {{- ' x ' -}} b"), "a x b");
  // trim_blocks drops the newline after a block tag; lstrip_blocks its line's indentation.
  EXPECT_EQ(render("<ul>\n  {% for x in [1,2] %}\n  <li>{{ x }}</li>\n  {% endfor %}\n</ul>"),
            "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>");
  EXPECT_EQ(render("  {{ 'v' }}\n"), "  v");  // variables are not lstripped; one final \n is dropped
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(render("x {% if true %}y{% endif %}"), "x y");  // not alone on its line: kept
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}"), "\nx");
  EXPECT_EQ(render("a {# comment #} b"), "a  b");
  EXPECT_EQ(render("a\n  {# c #}\nb"), "a\nb");
  EXPECT_EQ(render("a\r\nb\rc\n\n"), "a\nb\nc\n");
}

TEST(Jinja, TestsAndComparisons) {
  EXPECT_EQ(render("{{ none is none }} {{ 1 is none }} {{ 'x' is string }} {{ 1 is not string }} {{ x is not none }}"),
            "True False True True True");
  EXPECT_EQ(render("{{ 3 is odd }} {{ 4 is divisibleby 2 }} {{ 4 is divisibleby(3) }} {{ {} is mapping }} {{ true is boolean }}"),
            "True True False True True");
  EXPECT_EQ(render("{{ 'a' in 'cat' }} {{ 2 in [1,2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1,2] }}"), "True True True True");
  EXPECT_EQ(render("{{ 1 < 2 and 2 <= 2 }} {{ 1 > 2 or 'x' }} {{ not 0 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 0 and 1 }}"),
            "True x True True True 0");
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'y' if 1 else 'n' }}{{ 'y' if 0 else 'n' }}"), "True False yn");
  EXPECT_EQ(render("{{ not x is defined }}"), "True");  // `is` binds tighter than `not`
}

TEST(Jinja, SubscriptsSlicesAttributes) {
  EXPECT_EQ(render("{{ [1,2,3][-1] }} {{ 'hello'[1:3] }} {{ 'hello'[::-1] }} {{ [1,2,3,4][::2] }} {{ 'héllo'[1] }}"
                   " {{ [1,2,3][5] is defined }} {{ [1,2,3][-2:] }} {{ [1,2,3][:-1] }} {{ x.0 }}",
                   {{"x", {"zero"}}}),
            "3 el olleh [1, 3] \xC3\xA9 False [2, 3] [1, 2] zero");
  nlohmann::ordered_json m = {{"m", {{"role", "user"}, {"content", "hi"}}}};
  EXPECT_EQ(render("{{ m.role }} {{ m['content'] }} {{ m.missing is defined }} {{ m['tool_calls'] is defined }}", m),
            "user hi False False");
}

TEST(Jinja, Filters) {
  EXPECT_EQ(render("{{ '  x '|trim }}|{{ [1,2,3]|length }}|{{ 'héllo'|length }}|{{ 'Ab'|upper }}{{ 'Ab'|lower }}|"
                   "{{ [3,1]|first }}{{ [3,1]|last }}|{{ ['a','b']|join(', ') }}|{{ x|default('d') }}|{{ 42|string + '!' }}"),
            "x|3|5|ABab|31|a, b|d|42!");
  EXPECT_EQ(render("{{ 'hello world'|title }} {{ 'hELLO'|capitalize }} {{ 'a-b'|replace('-', '+') }} {{ [1,2]|reverse|list }}"),
            "Hello World Hello a+b [2, 1]");
  EXPECT_EQ(render("{{ '12'|int + 1 }} {{ 'x'|int }} {{ '2.5'|float }} {{ -3|abs }} {{ 2.5|round }} {{ 3.14159|round(2) }}"),
            "13 0 2.5 3 2.0 3.14");
  EXPECT_EQ(render("{{ 'a\\nb\\n\\nc'|indent(2) }}"), "a\n  b\n\n  c");
  EXPECT_EQ(render("{{ '<&>'|e }} {{ {'b': 1, 'A': 2}|dictsort }}"), "&lt;&amp;&gt; [('A', 2), ('b', 1)]");
  nlohmann::ordered_json msgs = {{"msgs", {{{"role", "user"}, {"content", "a"}}, {{"role", "assistant"}, {"content", "b"}},
                                           {{"role", "user"}, {"content", "c"}}}}};
  EXPECT_EQ(render("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }} "
                   "{{ msgs|rejectattr('role', 'equalto', 'user')|list|length }} {{ [0, 1, 2]|select|list }}"
                   " {{ ['a', 'B']|map('upper')|join }}",
                   msgs),
            "a,c 1 [1, 2] AB");
}

TEST(Jinja, ToJsonIsPythonJsonDumps) {
  EXPECT_EQ(render("{{ {'a': [1, 2.5, none, true], 'b': 'é\"\\n<'}|tojson }}"),
            R"({"a": [1, 2.5, null, true], "b": "é\"\n<"})");
  EXPECT_EQ(render("{{ {'a': [1], 'e': {}}|tojson(indent=2) }}"), "{\n  \"a\": [\n    1\n  ],\n  \"e\": {}\n}");
  EXPECT_EQ(render("{{ x|tojson(sort_keys=true) }} {{ x|tojson }} {{ 'é'|tojson(ensure_ascii=true) }}",
                   {{"x", {{"z", 1}, {"a", "\x01"}}}}),
            R"({"a": "\u0001", "z": 1} {"z": 1, "a": "\u0001"} "\u00e9")");
}

TEST(Jinja, StringAndDictMethods) {
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'x</think>y'.split('</think>')[-1] }}"
                   " {{ ' hi '.strip() }}|{{ 'xxhixx'.strip('x') }} {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }}"
                   " {{ 'a b c'.split(' ', 1) }} {{ 'role'.upper() }} {{ '-'.join(['a', 'b']) }} {{ 'aXbX'.replace('X', '') }}"),
            "['a', 'b', '', 'c'] ['a', 'b'] y hi|hi True True ['a', 'b c'] ROLE a-b ab");
  EXPECT_EQ(render("{{ d.get('k') }} {{ d.get('q', 'dflt') }} {{ d.get('q') }} {{ d.keys()|list }} {{ d.values()|list }}",
                   {{"d", {{"k", 1}}}}),
            "1 dflt None ['k'] [1]");
}

TEST(Jinja, MacrosAndGlobals) {
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                   "{{ greet('Bob') }} {{ greet('Al', punct='?') }}"),
            "Hi Bob! Hi Al?");
  EXPECT_EQ(render("{% set top = 'T' %}{% macro m() %}{{ top }}{{ local|default('-') }}{% endmacro %}"
                   "{% for local in [1] %}{{ m() }}{% endfor %}"),
            "T-");  // a macro sees the template's top level, not its caller's loop variables
  EXPECT_EQ(render("{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ dict(a=1) }}"), "[0, 1, 2] [1, 3, 5] {'a': 1}");
  EXPECT_EQ(render("{{ strftime_now('%Y')|length }}"), "4");
  EXPECT_EQ(error_of("\n  {{ raise_exception('Only user and assistant roles are supported!') }}"),
            "template:2:6: Only user and assistant roles are supported!");
}

TEST(Jinja, SyntaxErrorsHaveLineAndColumn) {
  EXPECT_EQ(error_of("{% if x %}never closed"), "template:1:23: unexpected end of template, expected 'endif'");
  EXPECT_EQ(error_of("line1\n{{ 1 + }}"), "template:2:8: unexpected '}}'");
  EXPECT_EQ(error_of("{% frobnicate %}"), "template:1:4: unknown or unsupported tag 'frobnicate'");
  EXPECT_EQ(error_of("a\n\n{{ x | nosuch }}"), "template:3:8: no filter named 'nosuch'");
  EXPECT_EQ(error_of("{{ x is nosuch }}"), "template:1:9: no test named 'nosuch'");
  EXPECT_EQ(error_of("{{ 'unterminated }}"), "template:1:4: unterminated string literal");
  EXPECT_EQ(error_of("{% break %}"), "template:1:4: 'break' outside of a loop");
  EXPECT_EQ(error_of("{# open comment"), "template:1:1: unterminated comment");
  EXPECT_EQ(error_of("{% raw %}x{% endraw %}"), "template:1:1: {% raw %} blocks are not supported");
  EXPECT_NE(error_of("{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}").find("nested too deeply"),
            std::string::npos);
  EXPECT_EQ(error_of("bad \xFF byte"), "template: template is not valid UTF-8");
}

TEST(ChatTemplate, VariablesLikeTransformers) {
  auto t = ChatTemplate::from_source(
      "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.content }}\n{% endfor %}"
      "{% if add_generation_prompt %}assistant:{% endif %}{{ tools is none }}{{ eos_token }}",
      "<s>", "</s>");
  nlohmann::json msgs = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
  EXPECT_EQ(t.render(msgs, true), "<s>user:hi\nassistant:True</s>");
  EXPECT_EQ(t.render(msgs, false, {{"tools", nlohmann::json::array()}}), "<s>user:hi\nFalse</s>");
  // ordered_json keeps the caller's key order where a template prints an object.
  auto dump = ChatTemplate::from_source("{{ messages[0]|tojson }}", "", "");
  nlohmann::ordered_json ordered = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "x"}}});
  EXPECT_EQ(dump.render(ordered, false), R"({"role": "user", "content": "x"})");
  EXPECT_EQ(dump.render(nlohmann::json(ordered), false), R"({"content": "x", "role": "user"})");
  try {
    ChatTemplate::from_source("{% for %}", "", "");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "chat template:1:8: expected a name, got '%}'");
  }
}

TEST(ChatTemplate, LoadsEveryConfigForm) {
  const std::string dir = ::testing::TempDir() + "/seek_chat_template_test";
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) { std::ofstream(dir + "/" + name) << text; };
  nlohmann::json msgs = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
  // A list of named templates: "default" is used. Special tokens may be {"content": ...} objects.
  write("tokenizer_config.json", R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>", "unk_token": null,
    "chat_template": [{"name": "tool_use", "template": "T"},
                      {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ unk_token is defined }}"}]})");
  EXPECT_EQ(ChatTemplate::load(dir).render(msgs, false), "<s>hiFalse");
  // No chat_template in the config: newer transformers keep it in chat_template.jinja.
  write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  write("chat_template.jinja", "{{ messages|length }}{{ eos_token }}\n");
  EXPECT_EQ(ChatTemplate::load(dir).render(msgs, false), "1</s>");
  write("tokenizer_config.json", R"({"chat_template": [{"name": "rag", "template": "x"}]})");
  try {
    ChatTemplate::load(dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no template named \"default\" (has: rag)"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
  EXPECT_THROW(ChatTemplate::load(dir), Error);
}

}  // namespace
}  // namespace seek::tokenizer::jinja
