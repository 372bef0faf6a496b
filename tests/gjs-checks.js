// gjs-checks.js: the checks the GJS tests share. A failed check prints
// what failed and the test goes on; finish() prints the count and exits
// non-zero if any check failed.
//
// SPDX-License-Identifier: LGPL-2.1-or-later
import System from 'system';

let failures = 0;
let checks = 0;

export function check(condition, what) {
    checks++;
    if (!condition) {
        failures++;
        printerr(`FAIL: ${what}`);
    }
}

export function equal(actual, expected, what) {
    check(JSON.stringify(actual) === JSON.stringify(expected),
        `${what}: ${JSON.stringify(actual)} != ${JSON.stringify(expected)}`);
}

export function finish(name) {
    print(`${name}: ${checks} checks, ${failures} failed`);
    System.exit(failures === 0 ? 0 : 1);
}
