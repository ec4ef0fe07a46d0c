/**
 * Lists functions, methods and arrow functions longer than MAX_LINES in src/,
 * mock-task-service/src, bench/ and tools/ (issue #19: "no function over 80 lines except data
 * tables").
 * Exits 1 if any is found that is not in ALLOWED. Tests (*.test.ts) are not scanned: their
 * describe() blocks are lists of cases.
 *
 *   npm run check:functions            # report and fail on long functions
 *   bun tools/function-lengths.ts --all  # list every long function, allowed or not
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as ts from 'typescript';

const MAX_LINES = 80;
const ROOTS = ['src', 'mock-task-service/src', 'bench', 'tools'];

/**
 * Functions that may stay long because they are data tables, not logic. Keyed by
 * "<file> <name>"; every entry needs a reason. Keep this empty if you can.
 */
const ALLOWED: Record<string, string> = {};

export interface LongFunction {
  file: string;
  line: number;
  name: string;
  lines: number;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.tsx?$/.test(entry) && !/\.(d|test)\.tsx?$/.test(entry)) out.push(path);
  }
  return out;
}

type FunctionNode =
  | ts.FunctionDeclaration
  | ts.FunctionExpression
  | ts.ArrowFunction
  | ts.MethodDeclaration
  | ts.ConstructorDeclaration
  | ts.GetAccessorDeclaration
  | ts.SetAccessorDeclaration;

function isFunctionNode(node: ts.Node): node is FunctionNode {
  return (
    ts.isFunctionDeclaration(node) ||
    ts.isFunctionExpression(node) ||
    ts.isArrowFunction(node) ||
    ts.isMethodDeclaration(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isGetAccessorDeclaration(node) ||
    ts.isSetAccessorDeclaration(node)
  );
}

/** A readable name: the declared one, else the variable, property or call it is bound to. */
function functionName(node: FunctionNode, source: ts.SourceFile): string {
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  if (node.name) return node.name.getText(source);
  const parent = node.parent;
  if (
    ts.isVariableDeclaration(parent) ||
    ts.isPropertyAssignment(parent) ||
    ts.isPropertyDeclaration(parent)
  ) {
    return parent.name.getText(source);
  }
  if (ts.isCallExpression(parent)) {
    const callee = parent.expression.getText(source).replace(/\s+/g, '');
    return `<callback of ${callee.length > 40 ? `${callee.slice(0, 40)}…` : callee}>`;
  }
  return '<anonymous>';
}

export function longFunctions(root = process.cwd(), maxLines = MAX_LINES): LongFunction[] {
  const found: LongFunction[] = [];
  for (const dir of ROOTS) {
    for (const path of sourceFiles(join(root, dir))) {
      const file = relative(root, path);
      const text = readFileSync(path, 'utf8');
      const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        if (isFunctionNode(node) && node.body) {
          const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
          const end = source.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
          const lines = end - start + 1;
          if (lines > maxLines) found.push({ file, line: start, name: functionName(node, source), lines });
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
  }
  return found.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
}

if (import.meta.main) {
  const showAll = process.argv.includes('--all');
  const found = longFunctions();
  const offending = found.filter((f) => !(`${f.file} ${f.name}` in ALLOWED));
  for (const f of showAll ? found : offending) {
    const allowed = `${f.file} ${f.name}` in ALLOWED ? '  (allowed: data table)' : '';
    console.log(`${f.file}:${f.line} ${f.name} (${f.lines} lines)${allowed}`);
  }
  if (offending.length > 0) {
    console.error(
      `\n${offending.length} function(s) over ${MAX_LINES} lines (issue #19); split them into named helpers.`,
    );
    process.exit(1);
  }
  console.log(`no function over ${MAX_LINES} lines outside the data-table allow-list`);
}
