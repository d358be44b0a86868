package org.ruang.app.presenter

import org.junit.jupiter.api.Test
import java.nio.ByteBuffer
import java.security.KeyPairGenerator
import java.security.SecureRandom
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import javax.crypto.Cipher
import javax.crypto.KeyAgreement
import javax.crypto.Mac
import javax.crypto.spec.GCMParameterSpec
import javax.crypto.spec.SecretKeySpec
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith

class WebPushTest {
    // RFC 8291 §5, the published example.
    private val uaPrivate = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
    private val uaPublic = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
    private val auth = "BTBZMqHH6r4Tts7J_aSIgg"
    private val body = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"

    private fun b(s: String) = WebPush.b64urlDecode(s)
    private fun rfcKeys() = WebPush.keysFromScalar(b(uaPrivate), b(uaPublic), b(auth))

    @Test
    fun rfc8291ExampleDecrypts() {
        val plain = WebPush.decrypt(b(body), rfcKeys())
        assertEquals("When I grow up, I want to be a watermelon", String(plain, Charsets.UTF_8))
    }

    @Test
    fun tamperedOrForeignMessagesAreRefused() {
        val keys = rfcKeys()
        // Every single flipped bit in the ciphertext or the header breaks it.
        val raw = b(body)
        for (i in listOf(0, 15, 21, 60, 86, raw.size - 1)) {
            val bad = raw.copyOf().also { it[i] = (it[i].toInt() xor 1).toByte() }
            assertFailsWith<PushDecryptException>("byte $i") { WebPush.decrypt(bad, keys) }
        }
        // Another receiver's keys, a truncated body, junk, an empty body.
        assertFailsWith<PushDecryptException> { WebPush.decrypt(raw, WebPush.newKeys()) }
        assertFailsWith<PushDecryptException> { WebPush.decrypt(raw.copyOf(40), keys) }
        assertFailsWith<PushDecryptException> { WebPush.decrypt(ByteArray(200) { 7 }, keys) }
        assertFailsWith<PushDecryptException> { WebPush.decrypt(ByteArray(0), keys) }
        assertFailsWith<PushDecryptException> { WebPush.b64urlDecode("not base64 !!") }
    }

    /** What the server does (RFC 8291 sender side, one record), written independently here. */
    private fun encrypt(plain: ByteArray, uaPublic: ByteArray, auth: ByteArray): ByteArray {
        val g = KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }
        val eph = g.generateKeyPair()
        val w = (eph.public as ECPublicKey).w
        fun p(v: java.math.BigInteger) = v.toByteArray().let { if (it.size > 32) it.copyOfRange(it.size - 32, it.size) else ByteArray(32 - it.size) + it }
        val asPublic = byteArrayOf(4) + p(w.affineX) + p(w.affineY)
        val kf = java.security.KeyFactory.getInstance("EC")
        val params = (eph.public as ECPublicKey).params
        val uaKey = kf.generatePublic(java.security.spec.ECPublicKeySpec(java.security.spec.ECPoint(
            java.math.BigInteger(1, uaPublic.copyOfRange(1, 33)), java.math.BigInteger(1, uaPublic.copyOfRange(33, 65))), params))
        val shared = KeyAgreement.getInstance("ECDH").run { init(eph.private); doPhase(uaKey, true); generateSecret() }
        fun hmac(k: ByteArray, d: ByteArray) = Mac.getInstance("HmacSHA256").run { init(SecretKeySpec(k, "HmacSHA256")); doFinal(d) }
        val ikm = hmac(hmac(auth, shared), "WebPush: info".toByteArray() + byteArrayOf(0) + uaPublic + asPublic + byteArrayOf(1))
        val salt = ByteArray(16).also { SecureRandom().nextBytes(it) }
        val prk = hmac(salt, ikm)
        val cek = hmac(prk, "Content-Encoding: aes128gcm".toByteArray() + byteArrayOf(0, 1)).copyOf(16)
        val nonce = hmac(prk, "Content-Encoding: nonce".toByteArray() + byteArrayOf(0, 1)).copyOf(12)
        val ct = Cipher.getInstance("AES/GCM/NoPadding").run {
            init(Cipher.ENCRYPT_MODE, SecretKeySpec(cek, "AES"), GCMParameterSpec(128, nonce))
            doFinal(plain + byteArrayOf(2, 0, 0))
        }
        return salt + ByteBuffer.allocate(4).putInt(4096).array() + byteArrayOf(65) + asPublic + ct
    }

    @Test
    fun newKeysRoundTripAndSurviveStorage() {
        val keys = WebPush.newKeys()
        assertEquals(65, keys.publicKey.size)
        assertEquals(4, keys.publicKey[0].toInt())
        assertEquals(16, keys.auth.size)
        val text = """{"kind":"followed_you","text":"Maya Sari followed you"}"""
        val msg = encrypt(text.toByteArray(), keys.publicKey, keys.auth)
        assertEquals(text, String(WebPush.decrypt(msg, keys)))
        // Stored and loaded back (PKCS#8 + the public point + the secret): still decrypts.
        val back = WebPush.keysFrom(keys.privateEncoded, b(keys.p256dh), b(keys.authB64))
        assertContentEquals(keys.publicKey, back.publicKey)
        assertEquals(text, String(WebPush.decrypt(msg, back)))
    }
}
