"""
Local delivery behind the SMTP server (SPEC S2, S3, X3, X4): each RCPT gets
the §36 reply and log line of its case; the stored bytes are the client's
bytes with only the Return-Path and Received lines added.
"""

import base64
import email.utils
import os

from twisted.trial.unittest import SynchronousTestCase

from tests.test_smtp_support import (
    DOMAIN, MESSAGE_ID, REMOTE_IP, Client, expected_head, make_factory, services_for,
    stored)
from zwms import replies
from zwms.account import Resolution


def line(pair):
    return "%d %s" % pair


class DeliverySpy:
    """Counts mail.deliver calls and keeps their account IDs."""

    def __init__(self, mail):
        self.calls = []
        self._deliver = mail.deliver
        mail.deliver = self

    def __call__(self, deliveries):
        self.calls.append([d.account_id for d in deliveries])
        return self._deliver(deliveries)


class Base(SynchronousTestCase):
    def setUp(self):
        self.services = services_for(self)
        self.factory = make_factory(self.services)
        self.client = Client(self.factory)
        self.client.ehlo()
        self.client.cmd(b"MAIL FROM:<bob@remote.example>")

    @property
    def log(self):
        return self.services.logs.lines["MailServer"]

    def rcpt(self, address):
        return self.client.cmd(b"RCPT TO:<" + address + b">")

    def set(self, account_id, key, value):
        self.services.accounts.set(account_id, key, value)


class SenderTests(SynchronousTestCase):
    def setUp(self):
        self.services = services_for(self)
        self.client = Client(make_factory(self.services))
        self.client.ehlo()

    def test_refused_sender_syntax(self):
        for path in (b'"john doe"@remote.example', b"@relay.example:bob@remote.example",
                     b"a%b@remote.example", b"a!b@remote.example", b"jos\xc3\xa9@remote.example",
                     b"bob@", b"bob", b"a..b@remote.example"):
            self.assertEqual(self.client.cmd(b"MAIL FROM:<" + path + b">"),
                             ["553 Error. Invalid Email address format"], path)
        self.assertEqual(self.services.logs.lines["MailServer"][:2], [
            'Invalid Email address <"john doe"@remote.example>',
            "Invalid Email address <@relay.example:bob@remote.example>"])
        self.assertEqual(len(self.services.logs.lines["MailServer"]), 8)

    def test_null_sender_stored_as_empty_return_path(self):
        self.client.cmd(b"MAIL FROM:<>")
        self.client.cmd(b"RCPT TO:<alice@example.com>")
        self.assertEqual(self.client.data(b"Subject: bounce\r\n")[-1], "250 OK. Mail received")
        self.assertEqual(stored(self.services),
                         [expected_head(self.services, sender="") + b"Subject: bounce\r\n"])


class RecipientTests(Base):
    def test_rcpt_to_logged(self):
        self.assertEqual(self.rcpt(b"alice@example.com"), ["250 Recipient address accepted"])
        self.assertEqual(self.log, ["RCPT TO <alice@example.com>"])

    def test_empty(self):
        self.assertEqual(self.rcpt(b""), [line(replies.EMAIL_REQUIRED)])
        self.assertEqual(self.client.cmd(b"RCPT TO:<>"), ["501 Error. Email is required"])
        self.assertEqual(self.log, ["Email address empty"] * 2)

    def test_invalid_syntax(self):
        for address in (b"x%y@example.com", b"x!y@example.com", b'"x"@example.com',
                        b"@a.example:alice@example.com", b"alice@exa mple.com"):
            self.assertEqual(self.rcpt(address), ["553 Error. Invalid Email address format"],
                             address)
        self.assertEqual(self.log[0], "Invalid Email address <x%y@example.com>")
        self.assertEqual(len(self.log), 5)

    def test_unknown_user(self):
        self.assertEqual(self.rcpt(b"nobody@example.com"), ["550 Error. User not found"])
        self.assertEqual(self.log, ["RCPT TO <nobody@example.com>",
                                    "User not found <nobody@example.com>"])

    def test_foreign_domain_relay_refused(self):
        self.assertEqual(self.rcpt(b"carol@elsewhere.example"), ["551 Error. Relay is refused"])
        self.assertEqual(self.log[-1], "Relay is refused <carol@elsewhere.example>")

    def test_remote_only_alias_refused(self):
        self.services.directory.add_alias("out@example.com", "carol@elsewhere.example")
        self.assertEqual(self.rcpt(b"out@example.com"), ["551 Error. Relay is refused"])
        self.assertEqual(self.log[-1], "Relay is refused <out@example.com>")

    def test_case_insensitive(self):
        self.assertEqual(self.rcpt(b"ALICE@Example.COM"), ["250 Recipient address accepted"])

    def test_locked(self):
        self.set("alice", "locked", "1")
        self.assertEqual(self.rcpt(b"alice@example.com"),
                         ["450 Error. User account is locked. Try again"])
        self.assertEqual(self.log[-1], "Mail receive but locked user <alice@example.com>")

    def test_inactive(self):
        self.set("alice", "active", "0")
        self.assertEqual(self.rcpt(b"alice@example.com"), ["450 Error. User account is inactive"])
        self.assertEqual(self.log[-1], "Mail receive but invalid user <alice@example.com>")

    def test_license_over(self):
        self.services.settings.set("MAXACCOUNTS", "1")
        self.assertEqual(self.rcpt(b"alice@example.com"), ["450 Error. User account is inactive"])
        self.assertEqual(self.log[-1], "Mail receive but license over <alice@example.com>")
        self.services.settings.set("MAXACCOUNTS", "2")
        self.assertEqual(self.rcpt(b"alice@example.com"), ["250 Recipient address accepted"])

    def deliver_one(self):
        self.client.cmd(b"RSET")
        self.client.cmd(b"MAIL FROM:<bob@remote.example>")
        self.client.cmd(b"RCPT TO:<alice@example.com>")
        self.assertEqual(self.client.data(b"Subject: 1\r\n")[-1], "250 OK. Mail received")
        self.client.cmd(b"MAIL FROM:<bob@remote.example>")

    def test_quantity_limit(self):
        self.set("alice", "maxmails", "2")
        self.deliver_one()
        self.assertEqual(self.rcpt(b"alice@example.com"), ["250 Recipient address accepted"])
        self.deliver_one()
        self.assertEqual(self.rcpt(b"alice@example.com"),
                         ["552 Error. User account over max mail qty"])
        self.assertEqual(self.log[-1], "Mail receive but qty limit <alice@example.com>")

    def test_capacity_limit(self):
        self.set("alice", "capacity", "1K")
        self.assertEqual(self.rcpt(b"alice@example.com"), ["250 Recipient address accepted"])
        self.client.cmd(b"RSET")
        self.client.cmd(b"MAIL FROM:<bob@remote.example>")
        self.rcpt(b"alice@example.com")
        self.client.data(b"x" * 1100 + b"\r\n")
        self.client.cmd(b"MAIL FROM:<bob@remote.example>")
        self.assertEqual(self.rcpt(b"alice@example.com"),
                         ["552 Error. User account over max mail capa"])
        self.assertEqual(self.log[-1], "Mail receive but capa limit <alice@example.com>")

    def test_alias_to_deleted_account(self):
        self.services.directory.resolve = lambda address: Resolution("local", ("ghost",))
        self.assertEqual(self.rcpt(b"ghost@example.com"),
                         ["450 Error. Can not read user account. Try again"])
        self.assertEqual(self.log[-1], "Mail receive but unknown user <ghost@example.com>")

    def test_group_alias_skips_the_account_that_cannot_receive(self):
        self.services.directory.add_alias("team@example.com", "alice")
        self.services.directory.add_alias("team@example.com", "bob")
        self.set("alice", "locked", "1")
        self.assertEqual(self.rcpt(b"team@example.com"), ["250 Recipient address accepted"])
        self.assertEqual(self.log[-1], "Mail receive but locked user <team@example.com>")
        self.client.data(b"Subject: team\r\n")
        self.assertEqual(stored(self.services), [])
        self.assertEqual(len(stored(self.services, "bob")), 1)

    def test_mixed_alias_delivers_local_part_and_logs_outside_part(self):
        self.services.directory.add_alias("mix@example.com", "alice")
        self.services.directory.add_alias("mix@example.com", "carol@elsewhere.example")
        self.assertEqual(self.rcpt(b"mix@example.com"), ["250 Recipient address accepted"])
        self.assertEqual(self.log[-1], "Relay is refused <carol@elsewhere.example> "
                                       "(alias target of <mix@example.com>)")


class AddressKindsTests(Base):
    """Virtual (§9), hosting (§23), representative (§22), multi-domain."""

    def deliver(self, *addresses):
        for address in addresses:
            self.assertEqual(self.rcpt(address), ["250 Recipient address accepted"], address)
        self.assertEqual(self.client.data(b"Subject: kinds\r\n")[-1], "250 OK. Mail received")

    def test_virtual_address(self):
        self.services.directory.add_alias("info@example.com", "bob")
        self.deliver(b"info@example.com")
        self.assertEqual(len(stored(self.services, "bob")), 1)

    def test_hosting_address(self):
        self.set("bob", "address", "boss@hosted.example")
        self.deliver(b"boss@hosted.example")
        self.assertEqual(len(stored(self.services, "bob")), 1)

    def test_representative_address(self):
        path = os.path.join(self.services.home.data, "sales@example.com.rep")
        with open(path, "w") as f:
            f.write("alice\nbob@example.com\n")
        self.deliver(b"sales@example.com")
        self.assertEqual(len(stored(self.services)), 1)
        self.assertEqual(len(stored(self.services, "bob")), 1)

    def test_multidomain(self):
        self.services.settings.set("MULTIDOMAINS", "other.example")
        self.deliver(b"alice@other.example")
        self.assertEqual(len(stored(self.services)), 1)

    def test_one_copy_per_account_in_one_store_call(self):
        spy = DeliverySpy(self.services.mail)
        self.services.directory.add_alias("team@example.com", "alice")
        self.services.directory.add_alias("team@example.com", "bob")
        self.deliver(b"alice@example.com", b"team@example.com", b"alice@example.com")
        self.assertEqual(spy.calls, [["alice", "bob"]])
        self.assertEqual(len(stored(self.services)), 1)
        self.assertEqual(stored(self.services), stored(self.services, "bob"))
        self.assertEqual(self.log[-3:], [
            "Mail receive success <%s> (%s, %d bytes, id %s)"
            % (rcpt, accounts, len(stored(self.services)[0]), MESSAGE_ID)
            for rcpt, accounts in (("alice@example.com", "alice"),
                                   ("team@example.com", "alice,bob"),
                                   ("alice@example.com", "alice"))])


class StoredBytesTests(Base):
    def test_byte_exact_with_added_header_lines(self):
        body = (b"From: Bob <bob@remote.example>\r\nTo: alice@example.com\r\n"
                b"Subject: =?UTF-8?B?7JWI64WV?=\r\n\r\nline one\nbare LF stays\r\n"
                b"bare CR\rstays\r\n..leading dot\r\n\r\n\xed\x95\x9c\xea\xb8\x80 8bit\r\n"
                b"no final newline")
        self.rcpt(b"alice@example.com")
        self.assertEqual(self.client.data(body + b"\r\n")[-1], "250 OK. Mail received")
        unstuffed = body.replace(b"\r\n..leading", b"\r\n.leading")
        self.assertEqual(stored(self.services),
                         [expected_head(self.services) + unstuffed + b"\r\n"])
        self.assertEqual(self.log[-1], "Mail receive success <alice@example.com> "
                         "(alice, %d bytes, id %s)" % (len(stored(self.services)[0]), MESSAGE_ID))

    def test_empty_message(self):
        self.rcpt(b"alice@example.com")
        self.assertEqual(self.client.data(b"")[-1], "250 OK. Mail received")
        self.assertEqual(stored(self.services), [expected_head(self.services)])

    def test_several_recipients_are_not_named(self):
        # Bcc recipients must not see each other in the Received header.
        self.rcpt(b"alice@example.com")
        self.rcpt(b"bob@example.com")
        self.client.data(b"Subject: two\r\n")
        self.assertEqual(stored(self.services),
                         [expected_head(self.services, rcpt=None) + b"Subject: two\r\n"])

    def test_received_header_protocol_names(self):
        # HELO: SMTP; EHLO after STARTTLS: ESMTPS; and AUTH: ESMTPSA.
        client = Client(self.factory, peer="::1")
        client.cmd(b"HELO old.example")
        client.cmd(b"MAIL FROM:<bob@remote.example>")
        client.cmd(b"RCPT TO:<alice@example.com>")
        client.data(b"x\r\n")
        client.cmd(b"STARTTLS")
        client.ehlo()
        client.envelope()
        client.data(b"y\r\n")
        client.cmd(b"AUTH PLAIN " + base64.b64encode(b"\0bob\0bob-pw"))
        client.cmd(b"MAIL FROM:<bob@example.com>")
        client.cmd(b"RCPT TO:<alice@example.com>")
        client.data(b"z\r\n")
        date = email.utils.formatdate(self.services.clock.seconds(), localtime=True)
        heads = [m.split(b"\r\n")[1:4] for m in stored(self.services)]
        self.assertEqual(heads, [
            [b"Received: from %s ([IPv6:::1])" % helo,
             b"\tby example.com with %s id %s" % (name, MESSAGE_ID.encode()),
             b"\tfor <alice@example.com>; " + date.encode()]
            for helo, name in ((b"old.example", b"SMTP"), (b"client.example", b"ESMTPS"),
                               (b"client.example", b"ESMTPSA"))])
        self.assertTrue(stored(self.services)[2].startswith(b"Return-Path: <bob@example.com>\r\n"))

    def test_hop_limit(self):
        self.rcpt(b"alice@example.com")
        hops = b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        body = hops * 50 + b"Subject: ok\r\n\r\n" + hops * 5
        self.assertEqual(self.client.data(body)[-1], "250 OK. Mail received")
        self.client.envelope()
        self.assertEqual(self.client.data(hops * 51 + b"\r\nbody\r\n")[-1],
                         "554 Error. Too many hops. Mail loop detected")
        self.assertEqual(len(stored(self.services)), 1)
        self.assertEqual(self.log[-1], "mail loops back to me (51 Received headers, "
                         "<bob@remote.example> -> <alice@example.com>)")

    def test_domain_in_header_follows_settings(self):
        self.services.settings.set("DOMAIN", "mail.example.net")
        self.services.settings.set("MULTIDOMAINS", DOMAIN)
        self.rcpt(b"alice@example.com")
        self.client.data(b"x\r\n")
        self.assertIn(b"\r\n\tby mail.example.net with ESMTP id ", stored(self.services)[0])


class HeaderInjectionTests(SynchronousTestCase):
    """Client text that reaches the added header lines cannot add lines."""

    def test_helo_with_bare_lf_refused(self):
        services = services_for(self)
        client = Client(make_factory(services))
        self.assertEqual(client.cmd(b"EHLO a\nX-Evil: 1"),
                         ["501 Error. HELO and EHLO need a valid domain name"])

    def test_sender_with_bare_cr_refused(self):
        services = services_for(self)
        client = Client(make_factory(services))
        client.ehlo()
        self.assertEqual(client.cmd(b"MAIL FROM:<a@b.example\rX-Evil: 1>"),
                         ["553 Error. Invalid Email address format"])

    def test_peer_ip_is_what_the_transport_says(self):
        services = services_for(self)
        client = Client(make_factory(services))
        client.envelope()
        client.data(b"x\r\n")
        self.assertIn(b"([%s])" % REMOTE_IP.encode(), stored(services)[0])
