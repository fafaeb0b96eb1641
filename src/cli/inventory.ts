import { parse } from './args.js';
import { inventoryOptions, inventoryOptionsHelp, openInventory } from './inventory-options.js';
import { inputError } from '../core/errors.js';
import { resolveHostVars } from '../inventory/vars.js';

const HELP = `Usage: hostctl inventory --list | --host NAME [options]

Prints the inventory as ansible-inventory does, with every variable resolved by Ansible's
precedence. Secret (vault) values are printed as ******** .

  --list                    all groups and hosts, with _meta.hostvars
  --host NAME               one host's variables
  --sources                 with --host: name the file each variable came from
${inventoryOptionsHelp}
  -h, --help                this help`;

// Magic variables hostctl adds for templates; ansible-inventory does not print them.
const MAGIC = new Set(['inventory_hostname', 'group_names']);
const shown = (vars: Map<string, { value: unknown; source: string }>, sources: boolean) =>
  Object.fromEntries([...vars].filter(([k]) => !MAGIC.has(k)).map(([k, v]) => [k, sources ? v : v.value]));

const options = {
  ...inventoryOptions,
  list: { type: 'boolean' },
  host: { type: 'string' },
  sources: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, options, 'inventory');
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (!values.list && !values.host) throw inputError('give --list or --host NAME', { hint: 'see `hostctl inventory --help`' });
  const inventory = await openInventory(values);
  const print = (data: unknown) => process.stdout.write(`${JSON.stringify(data, null, 4)}\n`);
  if (values.host) {
    if (!inventory.hosts.has(values.host)) throw inputError(`host ${values.host} is not in the inventory`);
    const vars = resolveHostVars(inventory, values.host);
    print(shown(vars, values.sources ?? false));
    return 0;
  }
  // As ansible-inventory --list: hosts without variables and groups without hosts or children
  // are left out, and "ungrouped" is always a child of "all".
  const hostvars = [...inventory.hosts.keys()].map((h) => [h, shown(resolveHostVars(inventory, h), false)] as const);
  const out: Record<string, unknown> = { _meta: { hostvars: Object.fromEntries(hostvars.filter(([, v]) => Object.keys(v).length > 0)) } };
  for (const g of inventory.groups.values()) {
    if (g.name === 'all') continue;
    const hosts = [...g.hosts];
    if (hosts.length === 0 && g.children.size === 0) continue;
    out[g.name] = { ...(g.children.size ? { children: [...g.children] } : {}), ...(hosts.length ? { hosts } : {}) };
  }
  const top = [...(inventory.groups.get('all')?.children ?? [])].filter((c) => c !== 'ungrouped');
  out.all = { children: ['ungrouped', ...top] };
  print(out);
  return 0;
}
