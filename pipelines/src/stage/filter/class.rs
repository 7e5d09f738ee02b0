//! The class dimension of the filter: direction × protocol × "carries ports", one direct table.

use config::{Direction, Rule};

use super::rule_set::{RowId, RuleBits, RuleSetsBuilder};

/// The three values a packet's direction can take, in table order.
const DIRECTIONS: [Option<Direction>; 3] =
    [None, Some(Direction::Ingress), Some(Direction::Egress)];
/// Entries of the table.
const CLASS_COUNT: usize = DIRECTIONS.len() * 256 * 2;

/// (direction, protocol, carries ports) → the rules whose direction, protocol and port ranges
/// accept a packet of that class.
///
/// Folding "carries ports" in here is what lets a packet without ports skip the port dimensions'
/// conditions: its class already excludes every rule with a port range.
#[derive(Clone, Debug)]
pub(super) struct ClassTable {
    rows: Box<[RowId]>,
}

impl ClassTable {
    pub(super) fn build(rules: &[Rule], sets: &mut RuleSetsBuilder) -> ClassTable {
        let accepts = |rule: &Rule, direction: Option<Direction>, has_ports: bool| {
            let wants_ports = rule.src_ports.is_some() || rule.dst_ports.is_some();
            // A rule with a direction never accepts a packet without one.
            rule.direction
                .is_none_or(|wanted| direction == Some(wanted))
                && (has_ports || !wants_ports)
        };
        // The rules naming each protocol: most protocols are named by none and share the set of
        // the rules that name no protocol.
        let mut naming: Vec<Vec<usize>> = vec![Vec::new(); 256];
        for (index, rule) in rules.iter().enumerate() {
            if let Some(protocol) = rule.protocol {
                naming[usize::from(protocol)].push(index);
            }
        }
        let mut table = Vec::with_capacity(CLASS_COUNT);
        // In the order of `index`: direction, then protocol, then carries ports.
        for direction in DIRECTIONS {
            let [without_ports, with_ports] = [false, true].map(|has_ports| {
                let mut set = RuleBits::empty(rules.len());
                for (index, rule) in rules.iter().enumerate() {
                    if rule.protocol.is_none() && accepts(rule, direction, has_ports) {
                        set.insert(index);
                    }
                }
                let row = sets.intern(&set);
                (set, row)
            });
            for named_by in &naming {
                for (has_ports, (any_protocol, any_protocol_row)) in
                    [(false, &without_ports), (true, &with_ports)]
                {
                    let row = if named_by.is_empty() {
                        *any_protocol_row
                    } else {
                        let mut set = any_protocol.clone();
                        for &index in named_by {
                            if accepts(&rules[index], direction, has_ports) {
                                set.insert(index);
                            }
                        }
                        sets.intern(&set)
                    };
                    table.push(row);
                }
            }
        }
        debug_assert_eq!(table.len(), CLASS_COUNT);
        ClassTable {
            rows: table.into_boxed_slice(),
        }
    }

    #[inline]
    pub(super) fn lookup(
        &self,
        direction: Option<Direction>,
        protocol: u8,
        has_ports: bool,
    ) -> RowId {
        self.rows[index(direction, protocol, has_ports)]
    }

    /// Heap bytes held.
    pub(super) fn memory_bytes(&self) -> usize {
        size_of_val(&*self.rows)
    }
}

/// Position of a class in the table.
fn index(direction: Option<Direction>, protocol: u8, has_ports: bool) -> usize {
    let direction = match direction {
        None => 0,
        Some(Direction::Ingress) => 1,
        Some(Direction::Egress) => 2,
    };
    (direction * 256 + usize::from(protocol)) * 2 + usize::from(has_ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_filled_in_index_order() {
        let mut position = 0;
        for direction in DIRECTIONS {
            for protocol in 0..=u8::MAX {
                for has_ports in [false, true] {
                    assert_eq!(index(direction, protocol, has_ports), position);
                    position += 1;
                }
            }
        }
        assert_eq!(position, CLASS_COUNT);
    }
}
