package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import kotlin.test.assertFalse
import kotlin.test.assertTrue

class NetworkSwitchPolicyTest {
    @Test
    fun theFirstNetworkIsWhereWeJoined() {
        val p = NetworkSwitchPolicy()
        assertFalse(p.onAvailable("wifi"))
        assertFalse(p.onAddresses("wifi", setOf("192.168.1.20")))
        assertFalse(p.onAvailable("wifi"), "the same network again")
    }

    @Test
    fun wifiToMobileDataAndBackAreSwitches() {
        val p = NetworkSwitchPolicy()
        p.onAvailable("wifi")
        assertTrue(p.onAvailable("cell"))
        assertTrue(p.onAvailable("wifi"))
    }

    @Test
    fun aLostAddressIsASwitchANewOneAloneIsNot() {
        val p = NetworkSwitchPolicy()
        p.onAvailable("wifi")
        assertFalse(p.onAddresses("wifi", setOf("10.0.0.5")))
        assertFalse(p.onAddresses("wifi", setOf("10.0.0.5", "fe80::1")), "an address added")
        assertTrue(p.onAddresses("wifi", setOf("10.0.0.9", "fe80::1")), "10.0.0.5 went away")
        assertFalse(p.onAddresses("wifi", setOf("10.0.0.9", "fe80::1")))
    }
}
