/* vega-util 2.1.3 (npm, BSD-3-Clause, same licence and authors as vega-interpreter.js
 * beside this file): the three functions vega-interpreter imports, from
 * build/interpreter.js, build/compare.js and build/isString.js. vl-convert's bundle
 * does not expose vega-util, so hpclab.site.build puts these in front of the
 * interpreter in place of its import line. */
const DisallowedObjectProperties = new Set([...Object.getOwnPropertyNames(Object.prototype)
        .filter(name => typeof Object.prototype[name] === 'function'),
    '__proto__',
    'then']);
const ascending = (_u, _v) => {
    let u = _u;
    let v = _v;
    return (u < v || u == null) && v != null ? -1
        : (u > v || v == null) && u != null ? 1
            : ((v = v instanceof Date ? +v : v), (u = u instanceof Date ? +u : u)) !== u && v === v ? -1
                : v !== v && u === u ? 1
                    : 0;
};
function isString(_) {
    return typeof _ === 'string';
}
