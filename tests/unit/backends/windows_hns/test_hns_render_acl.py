"""Golden tests: IR policy chains → HNS ACL endpoint policies, field by field.

Where the schema facts come from (summarised in
/work/shared/reference/kube-proxy-and-hns.md §3.2 and §3.4):
- ``AclPolicySetting`` fields, ``Action`` Allow/Block, ``Direction`` In/Out,
  ``RuleType`` Host/Switch, ``Protocols`` as a decimal string, comma-separated
  address/port lists with "a-b" ranges: hcsshim ``hcn/hcnpolicy.go``;
- ``Id`` on v2 ACLs, and 256 for "any protocol": Azure NPM's Windows dataplane
  (``npm/pkg/dataplane/policies/policy_windows.go``);
- In: source → Remote*, destination → Local*; priorities from 1000 up to 65000;
  IP sets expanded to address lists; 4,000 entries per rule; tiers flattened with
  Pass combined into the next tier; default rule at the end of each tier:
  Calico for Windows ``felix/dataplane/windows/policysets`` and ``flattener.go``.
Every rendered policy is run through the emulator's schema validator.
"""

from __future__ import annotations

from typing import Any

import hns_builders as b
import pytest

from dataplane.backends.windows_hns import schema
from dataplane.backends.windows_hns.render_acl import render_workload_acls
from dataplane.calc.ir import ALLOW_ALL, Chain, ChainEnd, Direction
from dataplane.errors import CapacityError
from dataplane.model import Action, TierDefault

OWNER = b.INSTANCE


def render(
    ingress: Chain, egress: Chain = ALLOW_ALL, sets: Any = ()
) -> tuple[list[Any], list[str]]:
    program = b.workload("web", "10.244.0.5", ingress, egress)
    policies, warnings = render_workload_acls(program, {s.id: s for s in sets}, OWNER)
    assert (
        schema.validate_endpoint_modify(
            {"ResourceType": "Policy", "RequestType": "Add", "Settings": {"Policies": policies}}
        )
        == []
    )
    return [p["Settings"] for p in policies], warnings


def default_rule(action: str, direction: str, priority: int, ref: str) -> dict[str, Any]:
    return {
        "Id": f"{OWNER}|{ref}",
        "Protocols": "256",
        "Action": action,
        "Direction": direction,
        "RuleType": "Switch",
        "Priority": priority,
    }


def chain(*rules: Any, default: TierDefault = TierDefault.DENY) -> Chain:
    return Chain(tiers=(b.tier("default", b.policy("default/pol", *rules), default=default),))


def test_no_policy_is_one_allow_default_per_direction() -> None:
    acls, warnings = render(ALLOW_ALL)
    assert acls == [
        default_rule("Allow", "In", 1000, "ingress default"),
        default_rule("Allow", "Out", 1000, "egress default"),
    ]
    assert warnings == []


def test_allow_from_cidr_to_port_then_default_deny() -> None:
    sets = [b.ip_set("s-cidr", "10.0.0.0/8")]
    acls, _ = render(
        chain(b.rule(protocol=6, src_sets=("s-cidr",), dst_ports=b.ports(80))), sets=sets
    )
    assert acls[0] == {
        "Id": f"{OWNER}|default/pol ingress[0]",
        "Protocols": "6",
        "Action": "Allow",
        "Direction": "In",
        "RuleType": "Switch",
        "Priority": 1000,
        "RemoteAddresses": "10.0.0.0/8",
        "LocalPorts": "80",
    }
    assert acls[1] == default_rule("Block", "In", 1001, "tier default ingress default")
    assert acls[2]["Direction"] == "Out"


def test_deny_rule_and_egress_mapping_is_reversed() -> None:
    sets = [b.ip_set("dst", "10.96.0.0/12")]
    egress = chain(
        b.rule(
            Action.DENY,
            direction=Direction.EGRESS,
            protocol=17,
            dst_sets=("dst",),
            dst_ports=b.ports(53),
            src_ports=b.ports((1024, 65535)),
        ),
        default=TierDefault.DENY,
    )
    acls, _ = render(ALLOW_ALL, egress, sets)
    out = [a for a in acls if a["Direction"] == "Out"]
    assert out[0] == {
        "Id": f"{OWNER}|default/pol egress[0]",
        "Protocols": "17",
        "Action": "Block",
        "Direction": "Out",
        "RuleType": "Switch",
        "Priority": 1000,
        "RemoteAddresses": "10.96.0.0/12",
        "RemotePorts": "53",
        "LocalPorts": "1024-65535",
    }


def test_port_ranges_are_merged_and_written_a_dash_b() -> None:
    acls, _ = render(chain(b.rule(protocol=6, dst_ports=b.ports((8000, 8010), (8005, 8020), 443))))
    assert acls[0]["LocalPorts"] == "443,8000-8020"


def test_ports_without_protocol_become_tcp_and_udp() -> None:
    acls, _ = render(chain(b.rule(dst_ports=b.ports(53))))
    assert [(a["Protocols"], a["Priority"]) for a in acls[:2]] == [("6", 1000), ("17", 1001)]


@pytest.mark.parametrize("proto", [1, 2, 6, 17, 58])
def test_supported_protocols(proto: int) -> None:
    acls, warnings = render(chain(b.rule(protocol=proto)))
    assert acls[0]["Protocols"] == str(proto) and warnings == []


def test_unsupported_protocol_is_left_out_with_warning() -> None:
    acls, warnings = render(chain(b.rule(protocol=132)))
    assert acls[0]["Id"].endswith("tier default ingress default")
    assert warnings == [
        "WorkloadEndpoint default/web: default/pol ingress[0]: protocol 132 not supported by "
        "HNS ACLs; left out"
    ]


def test_selector_and_cidr_sets_are_intersected() -> None:
    sets = [
        b.ip_set("sel", "10.244.0.7/32", "10.244.1.9/32", "10.245.0.1/32"),
        b.ip_set("cidr", "10.244.0.0/16"),
    ]
    acls, _ = render(chain(b.rule(src_sets=("sel", "cidr"))), sets=sets)
    assert acls[0]["RemoteAddresses"] == "10.244.0.7/32,10.244.1.9/32"


def test_empty_intersection_never_matches_and_is_left_out_silently() -> None:
    sets = [b.ip_set("a", "10.1.0.0/16"), b.ip_set("b", "10.2.0.0/16")]
    acls, warnings = render(chain(b.rule(src_sets=("a", "b"))), sets=sets)
    assert len(acls) == 2 and warnings == []


def test_ip_version_restricts_the_remote_side() -> None:
    acls, _ = render(chain(b.rule(ip_version=6)))
    assert acls[0]["RemoteAddresses"] == "::/0"


def test_tiers_with_pass_are_flattened_into_the_next_tier() -> None:
    sets = [b.ip_set("ns-a", "10.244.0.0/24")]
    ingress = Chain(
        tiers=(
            b.tier(
                "security",
                b.policy("gnp:pass-ns", b.rule(Action.PASS, "gnp:pass-ns", src_sets=("ns-a",))),
                b.policy("gnp:deny", b.rule(Action.DENY, "gnp:deny", protocol=6)),
            ),
            b.tier("default", b.policy("default/web", b.rule(protocol=6, dst_ports=b.ports(80)))),
        )
    )
    acls, _ = render(ingress, sets=sets)
    inbound = [
        (a["Action"], a["Id"].split("|")[1], a.get("RemoteAddresses"), a["Protocols"])
        for a in acls
        if a["Direction"] == "In"
    ]
    assert inbound == [
        # Pass ∧ each rule of the next tier, in order, including its default
        ("Allow", "default/pol ingress[0]", "10.244.0.0/24", "6"),
        ("Block", "tier default ingress default", "10.244.0.0/24", "256"),
        ("Block", "gnp:deny ingress[0]", None, "6"),
        ("Block", "tier security ingress default", None, "256"),
    ]
    assert [a["Priority"] for a in acls if a["Direction"] == "In"] == [1000, 1001, 1002, 1003]


def test_tier_default_pass_falls_through_to_profiles_and_end() -> None:
    ingress = Chain(
        tiers=(
            b.tier(
                "t",
                b.policy("gnp:x", b.rule(Action.DENY, "gnp:x", protocol=17)),
                default=TierDefault.PASS,
            ),
        ),
        profiles=(
            b.policy(
                "profile:kns.default", b.rule(Action.ALLOW, "profile:kns.default", protocol=6)
            ),
        ),
        end=ChainEnd.DENY,
    )
    acls, _ = render(ingress)
    inbound = [
        (a["Action"], a["Id"].split("|")[1], a["Protocols"]) for a in acls if a["Direction"] == "In"
    ]
    assert inbound == [
        ("Block", "gnp:x ingress[0]", "17"),
        ("Allow", "profile:kns.default ingress[0]", "6"),
        ("Block", "ingress default", "256"),
    ]


def test_pass_in_profiles_takes_the_chain_end() -> None:
    ingress = Chain(
        profiles=(b.policy("profile:p", b.rule(Action.PASS, "profile:p", protocol=6)),),
        end=ChainEnd.ALLOW,
    )
    acls, _ = render(ingress)
    assert [a["Action"] for a in acls if a["Direction"] == "In"] == ["Allow", "Allow"]


def test_more_than_4000_addresses_are_split() -> None:
    members = [f"10.{i // 250}.{i % 250}.1/32" for i in range(9001)]
    acls, _ = render(chain(b.rule(protocol=6, src_sets=("big",))), sets=[b.ip_set("big", *members)])
    chunks = [a for a in acls if a["Id"].endswith("ingress[0]")]
    assert [len(a["RemoteAddresses"].split(",")) for a in chunks] == [4000, 4000, 1001]
    assert [a["Priority"] for a in chunks] == [1000, 1001, 1002]
    joined = ",".join(a["RemoteAddresses"] for a in chunks).split(",")
    assert sorted(joined) == sorted(members)


def test_priority_band_overflow_groups_same_action_then_fails() -> None:
    many = [b.rule(protocol=6, index=i, dst_ports=b.ports(i + 1)) for i in range(64050)]
    acls, _ = render(chain(*many))
    assert acls[0]["Priority"] == acls[64049]["Priority"] == 1000
    alternating = [
        b.rule(
            Action.ALLOW if i % 2 else Action.DENY,
            index=i,
            protocol=6,
            dst_ports=b.ports(i % 60000 + 1),
        )
        for i in range(64010)
    ]
    with pytest.raises(CapacityError, match="WorkloadEndpoint default/web"):
        render(chain(*alternating))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"not_src_sets": ("x",)}, "address negation"),
        ({"not_protocol": 17}, "protocol negation"),
        ({"not_dst_ports": b.ports(22)}, "port negation"),
        ({"protocol": 1, "icmp_type": 8}, "ICMP type/code"),
    ],
)
def test_inexpressible_allow_is_left_out_and_deny_widened(fields: Any, reason: str) -> None:
    sets = [b.ip_set("x", "10.0.0.0/8")]
    allow, allow_warnings = render(chain(b.rule(Action.ALLOW, **fields)), sets=sets)
    assert [a["Action"] for a in allow if a["Direction"] == "In"] == ["Block"]  # only the default
    assert reason in allow_warnings[0] and "Allow left out" in allow_warnings[0]
    deny, deny_warnings = render(chain(b.rule(Action.DENY, **fields)), sets=sets)
    first = deny[0]
    assert first["Action"] == "Block" and first["Id"].endswith("ingress[0]")
    assert not {"RemoteAddresses", "LocalPorts"} & set(first)
    assert reason in deny_warnings[0] and "Block widened" in deny_warnings[0]


def test_named_ports() -> None:
    allow, warnings = render(chain(b.rule(protocol=6, dst_ports=b.ports(8080, named=("np",)))))
    assert allow[0]["LocalPorts"] == "8080" and "narrowed to its numeric ports" in warnings[0]
    only_named, warnings = render(chain(b.rule(protocol=6, dst_ports=b.ports(named=("np",)))))
    assert only_named[0]["Id"].endswith("default") and "Allow left out" in warnings[0]
    deny, warnings = render(
        chain(b.rule(Action.DENY, protocol=6, dst_ports=b.ports(named=("np",))))
    )
    assert "LocalPorts" not in deny[0] and "widened to any port" in warnings[0]


def test_log_rules_are_skipped_with_warning() -> None:
    acls, warnings = render(chain(b.rule(Action.LOG), b.rule(index=1, protocol=6)))
    assert acls[0]["Id"].endswith("ingress[1]")
    assert "Log is not supported" in warnings[0]


def test_missing_ip_set_matches_nothing_and_warns() -> None:
    acls, warnings = render(chain(b.rule(src_sets=("gone",))))
    assert acls[0]["Id"].endswith("default") and "IP set gone is missing" in warnings[0]
