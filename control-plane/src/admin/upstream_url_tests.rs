use super::*;
use proptest::prelude::*;

#[test]
fn refused_whatever_the_setting() {
    for bad in [
        "http://169.254.169.254/latest",
        "http://169.254.169.254./v1",
        "http://169.254.169.254.:80/v1",
        "http://169.254.169.254::80/v1",
        "http://[::169.254.169.254]/v1",
        "http://[::ffff:169.254.169.254]/v1",
        "http://[64:ff9b::a9fe:a9fe]/v1",
        "http://[64:ff9b:1::a9fe:a9fe]/v1",
        "http://[::ffff:0:a9fe:a9fe]/v1",
        "http://[2002:a9fe:a9fe::1]/v1",
        "http://[2001:0000:4136:e378:8000:63bf:5601:5601]/v1", // client 169.254.169.254? see below
        "http://[fe80::1]",
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://2852039166/",
        "http://metadata.google.internal/v1",
        "http://metadata.google.internal./v1",
        "http://METADATA.GOOGLE.INTERNAL/v1",
        "http://metadata/v1",
        "http://metadata.goog/v1",
        "http://instance-data/v1",
        "http://0.0.0.0",
        "http://255.255.255.255",
        "http://224.0.0.1",
        "http://:80/v1",
        "http://host:0/v1",
        "http://host:-1/v1",
        "http://host:99999/v1",
        "http://user@host/v1",
        "http://user:pw@host/v1",
        "http:///v1",
        "http://ho st/v1",
        "http://host/v 1",
        "http:\\\\host\\v1",
        "http://host\\@evil/v1",
        "ftp://host/v1",
        "file:///etc/passwd",
        "gopher://host/",
        "http://host/v1?x=1",
        "http://host/v1#frag",
        "http://host/v1%2f..",
        "host/v1",
        "",
    ] {
        for allow in [false, true] {
            assert!(
                check_base_url(bad, allow).is_err(),
                "{bad} (allow_private={allow}) should be refused"
            );
        }
    }
}

#[test]
fn private_targets_refused_unless_allowed() {
    for bad in [
        "http://127.0.0.1/v1",
        "http://127.0.0.1./v1",
        "http://127.1.2.3:8080",
        "http://10.0.0.1",
        "http://192.168.1.1",
        "http://172.16.0.1",
        "http://100.64.0.1",
        "http://[::1]:80",
        "http://[::ffff:127.0.0.1]",
        "http://[::127.0.0.1]",
        "http://[64:ff9b::7f00:1]",
        "http://[2002:7f00:1::1]",
        "http://[fd00::1]",
        "http://localhost:9000",
        "http://localhost.:9000",
        "http://api.internal",
        "http://2130706433",
        "http://0x7f.1",
        "http://127.1",
    ] {
        assert!(
            check_base_url(bad, false).is_err(),
            "{bad} should be refused"
        );
        assert!(
            check_base_url(bad, true).is_ok(),
            "{bad} allowed when private is"
        );
    }
}

#[test]
fn public_targets_pass_normalised() {
    for (given, stored) in [
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("https://API.OpenAI.com./v1/", "https://api.openai.com/v1"),
        ("https://8.8.8.8/v1", "https://8.8.8.8/v1"),
        (
            "http://[2001:db8::1]:8080/v1",
            "http://[2001:db8::1]:8080/v1",
        ),
        ("https://api.openai.com:443/v1", "https://api.openai.com/v1"),
        ("http://2130706433:9000/v1", "http://127.0.0.1:9000/v1"),
        // WHATWG reads a leading 0 as octal; the filter dials what is stored.
        ("http://017.0.0.1/v1", "http://15.0.0.1/v1"),
    ] {
        let allow = given.contains("2130706433");
        assert_eq!(check_base_url(given, allow).unwrap(), stored, "{given}");
    }
}

#[test]
fn teredo_client_is_the_last_32_bits_inverted() {
    // Client 169.254.169.254 = !0x5601_5601.
    let v6: Ipv6Addr = "2001:0:4136:e378:8000:63bf:5601:5601".parse().unwrap();
    assert!(embedded_v4(v6).contains(&Ipv4Addr::new(169, 254, 169, 254)));
}

fn link_local_v4() -> impl Strategy<Value = Ipv4Addr> {
    (any::<u8>(), any::<u8>()).prop_map(|(c, d)| Ipv4Addr::new(169, 254, c, d))
}

/// Every IPv6 form that embeds `v4`.
fn embeddings(v4: Ipv4Addr, noise: u64) -> Vec<Ipv6Addr> {
    let x = u32::from(v4);
    let (hi, lo) = ((x >> 16) as u16, x as u16);
    let n = noise.to_be_bytes();
    let w = |i: usize| u16::from_be_bytes([n[i], n[i + 1]]);
    let inv = !x;
    vec![
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo),
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, hi, lo),
        Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo),
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
        Ipv6Addr::new(0x64, 0xff9b, 1, w(0), w(2), w(4), hi, lo),
        Ipv6Addr::new(0x2002, hi, lo, w(0), w(2), w(4), w(6), w(1)),
        Ipv6Addr::new(
            0x2001,
            0,
            w(0),
            w(2),
            w(4),
            w(6),
            (inv >> 16) as u16,
            inv as u16,
        ),
        Ipv6Addr::new(0x2001, 0, hi, lo, w(4), w(6), w(0), w(2)),
    ]
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(s in "\\PC{0,80}", allow in any::<bool>()) {
        let _ = check_base_url(&s, allow);
        let _ = check_base_url(&format!("http://{s}"), allow);
        let _ = check_base_url(&format!("https://{s}/v1"), allow);
    }

    #[test]
    fn arbitrary_ipv6_hosts_never_panic(words in any::<[u16; 8]>(), allow in any::<bool>()) {
        let ip = Ipv6Addr::from(words);
        let _ = check_base_url(&format!("http://[{ip}]/v1"), allow);
    }

    #[test]
    fn link_local_inside_any_ipv6_form_is_refused(
        v4 in link_local_v4(), noise in any::<u64>(), allow in any::<bool>()
    ) {
        for v6 in embeddings(v4, noise) {
            let url = format!("http://[{v6}]/v1");
            prop_assert!(check_base_url(&url, allow).is_err(), "{}", url);
        }
        let url = format!("http://{v4}./v1");
        prop_assert!(check_base_url(&url, allow).is_err(), "{}", url);
    }
}
