// A compact Jinja2 interpreter: the subset Hugging Face chat templates use, with the
// environment `transformers` configures (trim_blocks, lstrip_blocks, loopcontrols, its own
// tojson, raise_exception and strftime_now globals). What is not supported is a syntax error,
// never silently ignored.
//
// Supported: {{ }}, {% if/elif/else %}, {% for %} (tuple targets, `if` filter, else, loop.*),
// {% set %} (names, tuples, ns.attr, block form), {% macro %}, {% break/continue %},
// {% generation %}, {# #}, whitespace control (-, +), literals, arithmetic, ~, comparisons, in,
// and/or/not, inline if/else, subscripts, slices, attributes, calls, filters, tests and Python
// string/dict methods. See builtins.cpp and filters.cpp for the filters, tests, methods and
// globals. Not supported: {% raw %}, {% call %}, {% filter %}, {% with %},
// {% include/import/extends %} and recursive loops (syntax errors); loop.cycle(), str.format()
// and `%` string formatting (run-time errors).
#pragma once
#include <memory>
#include <string>

#include "tokenizer/jinja/value.h"

namespace seek::tokenizer::jinja {

struct Options {
  bool trim_blocks = true;    // drop the first newline after a block tag or comment
  bool lstrip_blocks = true;  // drop spaces/tabs before a block tag or comment on its own line
  std::string name = "template";  // prefix of error messages: "NAME:LINE:COL: ..."
};

class Template {
 public:
  // Throws seek::Error "NAME:LINE:COL: message" on syntax errors.
  static Template parse(const std::string& source, const Options& options = {});
  // Throws seek::Error "NAME:LINE:COL: message" on run-time errors, raise_exception included.
  std::string render(const Map& variables) const;

 private:
  struct Parsed;
  std::shared_ptr<const Parsed> parsed_;
};

}  // namespace seek::tokenizer::jinja
