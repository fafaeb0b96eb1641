import type { Tags } from 'yaml';

const BOOL = 'tag:yaml.org,2002:bool';
const FLOAT = 'tag:yaml.org,2002:float';
// PyYAML's resolvers, which is what Ansible reads inventories with: booleans have no y/n,
// and a float needs a dot (so a host named "e1" stays a string, as in Ansible).
const PY_TRUE = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const PY_FALSE = /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/;
const PY_FLOAT = /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?)$/;

// The yaml package's YAML 1.1 schema, with scalars resolved the way PyYAML does.
export function pyyamlTags(extra: Tags): (tags: Tags) => Tags {
  return (tags) => [
    ...tags.flatMap((tag) => {
      if (typeof tag !== 'object' || !('test' in tag) || !tag.test) return [tag];
      if (tag.tag === BOOL) return [{ ...tag, test: tag.test.test('true') ? PY_TRUE : PY_FALSE }];
      if (tag.tag === FLOAT && 'format' in tag && tag.format === 'EXP') return [];
      if (tag.tag === FLOAT && !tag.test.test('.nan')) return [{ ...tag, test: PY_FLOAT }];
      return [tag];
    }),
    ...extra,
  ];
}
