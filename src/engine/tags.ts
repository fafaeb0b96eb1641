// --tags / --skip-tags as Ansible reads them: a task runs when it carries a selected tag (or
// no --tags was given) and none of the skipped ones; "always" runs unless skipped by name.
export class TagSelection {
  readonly #only: ReadonlySet<string>;
  readonly #skip: ReadonlySet<string>;

  constructor(only: readonly string[] = [], skip: readonly string[] = []) {
    this.#only = new Set(only);
    this.#skip = new Set(skip);
  }

  selects(tags: readonly string[]): boolean {
    if (tags.some((t) => this.#skip.has(t))) return false;
    if (this.#only.size === 0 || this.#only.has('all')) return true;
    return tags.includes('always') || tags.some((t) => this.#only.has(t));
  }
}
